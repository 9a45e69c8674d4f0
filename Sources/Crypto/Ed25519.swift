import COpenSSL

/// Why a key could not be used.
public struct CryptoError: Error, Equatable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// An Ed25519 public key (RFC 8032): verifies signatures.
public struct Ed25519PublicKey: Sendable, Equatable {
    /// The 32 raw bytes.
    public let rawRepresentation: [UInt8]

    public init(rawRepresentation: [UInt8]) throws(CryptoError) {
        guard rawRepresentation.count == 32 else { throw CryptoError("an Ed25519 public key is 32 bytes") }
        self.rawRepresentation = rawRepresentation
    }

    /// Reads a PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`), as `openssl pkey -pubout` writes.
    public init(pem: String) throws(CryptoError) {
        let bytes = Array(pem.utf8)
        let read: OpaquePointer? = bytes.withUnsafeBufferPointer { buffer in
            guard buffer.count <= Int(Int32.max), let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PUBKEY(bio, nil, nil, nil)
        }
        guard let key = read else { throw CryptoError("not a PEM public key") }
        defer { EVP_PKEY_free(key) }
        guard EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 else { throw CryptoError("the PEM key is not an Ed25519 key") }
        var raw = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard EVP_PKEY_get_raw_public_key(key, &raw, &length) == 1, length == 32 else {
            throw CryptoError("OpenSSL could not read the Ed25519 public key")
        }
        try self.init(rawRepresentation: raw)
    }

    /// Whether `signature` is this key's signature of `message`. Malformed input is simply invalid.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard signature.count == 64,
              let key = rawRepresentation.withUnsafeBufferPointer({
                  EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32)
              }) else { return false }
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1 else { return false }
        return signature.withUnsafeBufferPointer { signature in
            message.withUnsafeBufferPointer { message in
                EVP_DigestVerify(context, signature.baseAddress, 64, message.baseAddress, message.count) == 1
            }
        }
    }
}

/// An Ed25519 private key: signs. Held in OpenSSL's memory, which it clears when freed.
public final class Ed25519PrivateKey: Sendable {
    // The EVP_PKEY is never mutated after creation, and OpenSSL allows concurrent signing with
    // separate EVP_MD_CTX objects over one key, so sharing the pointer across threads is safe.
    nonisolated(unsafe) private let key: OpaquePointer
    public let publicKey: Ed25519PublicKey

    /// A fresh random key.
    public convenience init() throws(CryptoError) {
        try self.init(seed: SecureRandom.bytes(32))
    }

    /// The key for a 32-byte RFC 8032 private key (seed).
    public convenience init(seed: [UInt8]) throws(CryptoError) {
        guard seed.count == 32 else { throw CryptoError("an Ed25519 private key is 32 bytes") }
        guard let key = seed.withUnsafeBufferPointer({ EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32) })
        else { throw CryptoError("OpenSSL refused the Ed25519 private key") }
        try self.init(owning: key)
    }

    /// Reads a PKCS #8 PEM private key (`-----BEGIN PRIVATE KEY-----`), as `openssl genpkey -algorithm ed25519` writes.
    public convenience init(pem: String) throws(CryptoError) {
        let bytes = Array(pem.utf8)
        let read: OpaquePointer? = bytes.withUnsafeBufferPointer { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let key = read else { throw CryptoError("not a PEM private key") }
        guard EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 else {
            EVP_PKEY_free(key)
            throw CryptoError("the PEM key is not an Ed25519 key")
        }
        try self.init(owning: key)
    }

    private init(owning key: OpaquePointer) throws(CryptoError) {
        var raw = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard EVP_PKEY_get_raw_public_key(key, &raw, &length) == 1, length == 32 else {
            EVP_PKEY_free(key)
            throw CryptoError("OpenSSL could not derive the Ed25519 public key")
        }
        self.key = key
        publicKey = try Ed25519PublicKey(rawRepresentation: raw)
    }

    deinit {
        EVP_PKEY_free(key)
    }

    /// The 64-byte signature of `message` (deterministic, RFC 8032).
    public func signature(for message: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw CryptoError("out of memory") }
        defer { EVP_MD_CTX_free(context) }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        let ok = EVP_DigestSignInit(context, nil, nil, nil, key) == 1 && message.withUnsafeBufferPointer {
            EVP_DigestSign(context, &signature, &length, $0.baseAddress, $0.count) == 1
        }
        guard ok, length == 64 else { throw CryptoError("OpenSSL could not sign") }
        return signature
    }

    /// The key as PKCS #8 PEM.
    public func pemRepresentation() throws(CryptoError) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw CryptoError("out of memory") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PrivateKey(bio, key, nil, nil, 0, nil, nil) == 1 else { throw CryptoError("OpenSSL could not write the key") }
        var pointer: UnsafeMutablePointer<CChar>?
        let length = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &pointer)
        guard let pointer, length > 0 else { throw CryptoError("OpenSSL wrote no key") }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
    }
}
