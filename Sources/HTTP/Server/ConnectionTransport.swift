/// What carries one connection's bytes when a security layer (TLS) sits on the socket. The HTTP
/// module knows it only through this protocol; the layer itself lives in its own module.
///
/// A transport is used by its connection only, always under the connection's lock.
public protocol ConnectionTransport: AnyObject {
    /// One non-blocking read of plaintext (a handshake in progress reads and writes as it needs).
    func read(into buffer: UnsafeMutableRawBufferPointer) -> IOResult
    /// One non-blocking write of plaintext.
    func write(_ bytes: UnsafeRawBufferPointer) -> IOResult
    /// Plaintext already received and decrypted but not yet read: no socket event will announce it.
    var hasBufferedInput: Bool { get }
    /// The lowercase hex SHA-256 of the client's certificate, when it presented one that verified.
    var peerCertificateSHA256: String? { get }
    /// Best-effort orderly close (a TLS close_notify) before the descriptor is closed.
    func shutdown()
}

/// Makes the transport of each accepted connection; nil refuses the connection (closed at once).
public protocol TransportSecurity: Sendable {
    func transport(for fd: Int32) -> (any ConnectionTransport)?
}
