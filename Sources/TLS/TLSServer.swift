#if canImport(Glibc)
import Glibc
#endif
import COpenSSL
import Crypto
import HTTP
import Synchronization

/// Why TLS could not be set up, naming the file or step.
public struct TLSError: Error, CustomStringConvertible, Sendable {
    public let description: String

    init(_ step: String) {
        var detail = ""
        let code = ERR_get_error()
        if code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            detail = ": " + String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        ERR_clear_error()
        description = step + detail
    }
}

/// The files TLS is built from.
public struct TLSSettings: Sendable {
    /// PEM certificate chain, the server's certificate first.
    public var certificateFile: String
    /// PEM private key of that certificate.
    public var keyFile: String
    /// PEM CA certificates that client certificates must chain to (mutual TLS); nil asks for none.
    public var clientCAFile: String?

    public init(certificateFile: String, keyFile: String, clientCAFile: String? = nil) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.clientCAFile = clientCAFile
    }
}

/// One configured OpenSSL context. Immutable once built; OpenSSL lets any thread make connections
/// from a context that is no longer being configured, and the last connection's reference frees it.
final class TLSContext: @unchecked Sendable {
    // @unchecked: the pointer is only read after `init` configured it, and OpenSSL's SSL_new on a
    // configured SSL_CTX is thread-safe (the context is reference counted internally).
    let pointer: OpaquePointer

    init(_ settings: TLSSettings) throws(TLSError) {
        guard let context = SSL_CTX_new(TLS_server_method()) else { throw TLSError("SSL_CTX_new") }
        pointer = context
        // TLS 1.2 and 1.3 only; for 1.2, forward-secret AEAD suites only (1.3's are all modern).
        guard careledger_ssl_ctx_set_min_proto(context, TLS1_2_VERSION) == 1 else { throw TLSError("setting the minimum TLS version") }
        careledger_ssl_ctx_harden(context)
        guard SSL_CTX_set_cipher_list(context, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!SHA1:!SHA256:!SHA384") == 1 else {
            throw TLSError("setting the TLS 1.2 cipher suites")
        }
        guard SSL_CTX_use_certificate_chain_file(context, settings.certificateFile) == 1 else {
            throw TLSError("reading the certificate chain \(settings.certificateFile)")
        }
        guard SSL_CTX_use_PrivateKey_file(context, settings.keyFile, SSL_FILETYPE_PEM) == 1 else {
            throw TLSError("reading the private key \(settings.keyFile)")
        }
        guard SSL_CTX_check_private_key(context) == 1 else { throw TLSError("the private key does not match the certificate") }
        if let caFile = settings.clientCAFile {
            guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1, let names = SSL_load_client_CA_file(caFile) else {
                throw TLSError("reading the client CA file \(caFile)")
            }
            SSL_CTX_set_client_CA_list(context, names)
            // Ask for a certificate but do not require one: bearer keys keep working on the same port.
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
            let sessionContext = Array("careledger".utf8)
            _ = SSL_CTX_set_session_id_context(context, sessionContext, UInt32(sessionContext.count))
        }
    }

    deinit {
        SSL_CTX_free(pointer)
    }
}

/// HTTPS for the HTTP server: a TLS session per accepted connection, from a context that
/// `reload()` can replace (new connections use the new certificate; open ones keep theirs).
public final class TLSServer: TransportSecurity {
    private let settings: TLSSettings
    private let current: Mutex<TLSContext>

    public init(_ settings: TLSSettings) throws(TLSError) {
        self.settings = settings
        current = Mutex(try TLSContext(settings))
        // OpenSSL writes to the socket with write(2), which raises SIGPIPE when the peer has gone
        // (a close_notify to a client that hung up); the default action would end the process.
        signal(SIGPIPE, SIG_IGN)
    }

    /// Reads the files again; on any failure the running certificate stays and the error is thrown.
    public func reload() throws(TLSError) {
        let fresh = try TLSContext(settings)
        current.withLock { $0 = fresh }
    }

    public func transport(for fd: Int32) -> (any ConnectionTransport)? {
        let context = current.withLock { $0 }
        guard let ssl = SSL_new(context.pointer) else { return nil }
        guard SSL_set_fd(ssl, fd) == 1 else {
            SSL_free(ssl)
            return nil
        }
        SSL_set_accept_state(ssl)
        return TLSTransport(ssl: ssl, context: context, fd: fd)
    }
}

/// One connection's TLS session over a non-blocking socket. Used only under its connection's lock.
final class TLSTransport: ConnectionTransport {
    private let ssl: OpaquePointer
    /// Keeps the context alive for as long as a session made from it.
    private let context: TLSContext
    private let fd: Int32
    private var firstByteChecked = false
    private var closed = false
    private var fingerprint: String??

    init(ssl: OpaquePointer, context: TLSContext, fd: Int32) {
        self.ssl = ssl
        self.context = context
        self.fd = fd
    }

    deinit {
        SSL_free(ssl)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> IOResult {
        if !firstByteChecked, let refused = refusePlaintext() { return refused }
        ERR_clear_error()
        let count = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
        if count > 0 { return .transferred(Int(count)) }
        return outcome(of: count, call: "SSL_read")
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> IOResult {
        guard !bytes.isEmpty else { return .transferred(0) }
        ERR_clear_error()
        let count = SSL_write(ssl, bytes.baseAddress, Int32(clamping: bytes.count))
        if count > 0 { return .transferred(Int(count)) }
        return outcome(of: count, call: "SSL_write")
    }

    var hasBufferedInput: Bool {
        SSL_pending(ssl) > 0
    }

    var peerCertificateSHA256: String? {
        if let fingerprint { return fingerprint }
        var value: String?
        if SSL_get_verify_result(ssl) == X509_V_OK, let certificate = SSL_get0_peer_certificate(ssl) {
            let length = i2d_X509(certificate, nil)
            if length > 0 {
                var der = [UInt8](repeating: 0, count: Int(length))
                let written = der.withUnsafeMutableBufferPointer { buffer -> Int32 in
                    var cursor = buffer.baseAddress
                    return i2d_X509(certificate, &cursor)
                }
                if written == length { value = SHA256.hexDigest(der) }
            }
        }
        fingerprint = .some(value)
        return value
    }

    func shutdown() {
        guard !closed else { return }
        closed = true
        // Only after a handshake: close_notify on a half-done session means nothing to the peer.
        if SSL_is_init_finished(ssl) == 1 {
            ERR_clear_error()
            _ = SSL_shutdown(ssl)
        }
    }

    /// A client speaking plain HTTP to the TLS port gets a plain 400 saying so, then the close,
    /// instead of a handshake failure it cannot read. TLS always starts with a handshake record (22).
    private func refusePlaintext() -> IOResult? {
        var first: UInt8 = 0
        let peeked = recv(fd, &first, 1, Int32(MSG_PEEK))
        if peeked <= 0 { return nil }
        firstByteChecked = true
        guard first != 22 else { return nil }
        let body = #"{"error":{"code":"tls_required","message":"This port speaks HTTPS only."}}"#
        let response = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        _ = response.utf8CString.withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) }
        return .failed(SocketError(call: "TLS handshake (plain HTTP received)", errno: EPROTO))
    }

    private func outcome(of result: Int32, call: String) -> IOResult {
        let error = SSL_get_error(ssl, result)
        switch error {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .wouldBlock
        case SSL_ERROR_ZERO_RETURN:
            return .endOfFile
        case SSL_ERROR_SYSCALL:
            let code = errno
            ERR_clear_error()
            return code == 0 ? .endOfFile : .failed(SocketError(call: call, errno: code))
        default:
            ERR_clear_error()
            return .failed(SocketError(call: call, errno: EPROTO))
        }
    }
}
