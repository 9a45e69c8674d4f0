import COpenSSL

/// SHA-256 over OpenSSL's EVP interface.
public enum SHA256 {
    /// The 32-byte digest of `bytes`.
    public static func digest<Bytes: ContiguousBytes>(_ bytes: Bytes) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let ok = bytes.withUnsafeBytes { input in
            digest.withUnsafeMutableBufferPointer { output in
                EVP_Digest(input.baseAddress, input.count, output.baseAddress, &length, EVP_sha256(), nil)
            }
        }
        // EVP_Digest with SHA-256 fails only when OpenSSL cannot allocate a context.
        precondition(ok == 1 && length == 32, "OpenSSL SHA-256 failed")
        return digest
    }

    /// Writes the 32-byte digest of `input` to `output`, allocating nothing: for hashing millions
    /// of tree nodes into one flat buffer.
    public static func digest(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawPointer) {
        var length: UInt32 = 0
        let ok = EVP_Digest(input.baseAddress, input.count, output.assumingMemoryBound(to: UInt8.self), &length, EVP_sha256(), nil)
        precondition(ok == 1 && length == 32, "OpenSSL SHA-256 failed")
    }

    /// The digest as lowercase hex.
    public static func hexDigest<Bytes: ContiguousBytes>(_ bytes: Bytes) -> String {
        Hex.encode(digest(bytes))
    }
}

/// Lowercase hexadecimal encoding.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// `bytes` as lowercase hex.
    public static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Types whose contiguous bytes can be hashed without copying.
public protocol ContiguousBytes {
    /// Calls `body` with the bytes.
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

extension Array: ContiguousBytes where Element == UInt8 {}
extension ArraySlice: ContiguousBytes where Element == UInt8 {}
