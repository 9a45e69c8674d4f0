import Crypto

/// API keys as callers hold them: `clk_<keyId>_<secret>`, the secret 256 random bits in base32.
/// Only SHA-256 of the secret is stored, so a copy of the database grants no access.
struct APIKeyToken {
    static let prefix = "clk_"
    static let keyIDPrefix = "key"
    private static let secretLength = 52

    let keyId: String
    let secret: String

    /// A new key: the token to show once, and the digest to store.
    static func generate() -> (token: APIKeyToken, secretSHA256: [UInt8]) {
        let token = APIKeyToken(keyId: ResourceID.generate(keyIDPrefix), secret: Base32.encode(SecureRandom.bytes(32)))
        return (token, token.secretSHA256)
    }

    private init(keyId: String, secret: String) {
        self.keyId = keyId
        self.secret = secret
    }

    /// The token's parts, or nil when it does not have the shape of a key.
    init?(parsing text: Substring) {
        guard text.hasPrefix(Self.prefix) else { return nil }
        let rest = text.dropFirst(Self.prefix.count)
        guard let split = rest.lastIndex(of: "_") else { return nil }
        let keyId = String(rest[..<split])
        let secret = rest[rest.index(after: split)...]
        guard ResourceID.isWellFormed(keyId, prefix: Self.keyIDPrefix), secret.utf8.count == Self.secretLength,
              Base32.isValid(secret) else { return nil }
        self.init(keyId: keyId, secret: String(secret))
    }

    /// The token from an `Authorization: Bearer <token>` field (RFC 6750 §2.1; the scheme is
    /// case-insensitive).
    init?(authorization: String?) {
        guard let authorization, let space = authorization.firstIndex(of: " "),
              authorization[..<space].lowercased() == "bearer" else { return nil }
        self.init(parsing: authorization[space...].drop { $0 == " " })
    }

    var text: String { Self.prefix + keyId + "_" + secret }

    var secretSHA256: [UInt8] { SHA256.digest(Array(secret.utf8)) }

    /// Whether this token's secret matches the stored digest, in constant time.
    func matches(storedSHA256: [UInt8]) -> Bool {
        ConstantTime.equals(secretSHA256, storedSHA256)
    }
}
