import COpenSSL

/// AES-256-GCM (NIST SP 800-38D): authenticated encryption for data at rest. A sealed box is
/// nonce (12 bytes, random per message) || ciphertext || tag (16 bytes); additional data is
/// authenticated but not stored, so a box moved to another record fails to open.
public enum AESGCM {
    public static let keySize = 32
    static let nonceSize = 12
    static let tagSize = 16

    public static func seal(_ plaintext: [UInt8], key: [UInt8], authenticating additional: [UInt8] = []) throws(CryptoError) -> [UInt8] {
        try seal(plaintext, key: key, nonce: SecureRandom.bytes(nonceSize), authenticating: additional)
    }

    /// With a given nonce: for known-answer tests only; a nonce must never repeat under one key.
    static func seal(_ plaintext: [UInt8], key: [UInt8], nonce: [UInt8], authenticating additional: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard key.count == keySize, nonce.count == nonceSize else { throw CryptoError("AES-256-GCM needs a 32-byte key and a 12-byte nonce") }
        guard let context = EVP_CIPHER_CTX_new() else { throw CryptoError("out of memory") }
        defer { EVP_CIPHER_CTX_free(context) }
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + 16)
        var tag = [UInt8](repeating: 0, count: tagSize)
        var length: Int32 = 0
        var total: Int32 = 0
        var ok = EVP_EncryptInit_ex(context, EVP_aes_256_gcm(), nil, key, nonce) == 1
        if ok, !additional.isEmpty { ok = EVP_EncryptUpdate(context, nil, &length, additional, Int32(additional.count)) == 1 }
        if ok, !plaintext.isEmpty {
            ok = EVP_EncryptUpdate(context, &ciphertext, &length, plaintext, Int32(plaintext.count)) == 1
            total = length
        }
        if ok {
            ok = ciphertext.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(context, $0.baseAddress! + Int(total), &length) } == 1
            total += length
        }
        if ok { ok = EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, Int32(tagSize), &tag) == 1 }
        guard ok else { throw CryptoError("OpenSSL could not encrypt") }
        return nonce + ciphertext.prefix(Int(total)) + tag
    }

    /// The plaintext, or an error if the box was altered, is for other additional data, or the key is wrong.
    public static func open(_ box: [UInt8], key: [UInt8], authenticating additional: [UInt8] = []) throws(CryptoError) -> [UInt8] {
        guard key.count == keySize else { throw CryptoError("AES-256-GCM needs a 32-byte key") }
        guard box.count >= nonceSize + tagSize else { throw CryptoError("the sealed box is too short") }
        let nonce = Array(box.prefix(nonceSize))
        let ciphertext = Array(box[nonceSize..<(box.count - tagSize)])
        var tag = Array(box.suffix(tagSize))
        guard let context = EVP_CIPHER_CTX_new() else { throw CryptoError("out of memory") }
        defer { EVP_CIPHER_CTX_free(context) }
        var plaintext = [UInt8](repeating: 0, count: ciphertext.count + 16)
        var length: Int32 = 0
        var total: Int32 = 0
        var ok = EVP_DecryptInit_ex(context, EVP_aes_256_gcm(), nil, key, nonce) == 1
        if ok, !additional.isEmpty { ok = EVP_DecryptUpdate(context, nil, &length, additional, Int32(additional.count)) == 1 }
        if ok, !ciphertext.isEmpty {
            ok = EVP_DecryptUpdate(context, &plaintext, &length, ciphertext, Int32(ciphertext.count)) == 1
            total = length
        }
        if ok { ok = EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32(tagSize), &tag) == 1 }
        if ok {
            ok = plaintext.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(context, $0.baseAddress! + Int(total), &length) } > 0
            total += length
        }
        guard ok else { throw CryptoError("the sealed box does not open: altered, or another key or context") }
        return Array(plaintext.prefix(Int(total)))
    }
}

/// HMAC-SHA256 (RFC 2104): keyed hashes, e.g. blind indexes that let identifiers be looked up
/// without being stored in clear.
public enum HMACSHA256 {
    public static func authenticationCode(_ message: [UInt8], key: [UInt8]) -> [UInt8] {
        var code = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let result = key.withUnsafeBufferPointer { key in
            message.withUnsafeBufferPointer { message in
                HMAC(EVP_sha256(), key.baseAddress, Int32(key.count), message.baseAddress, message.count, &code, &length)
            }
        }
        // HMAC fails only when OpenSSL cannot allocate its context.
        precondition(result != nil && length == 32, "OpenSSL HMAC-SHA256 failed")
        return code
    }
}
