import Crypto

/// Base64url without padding (RFC 7515 §2), strict: one spelling per value.
public enum Base64URL {
    public static func encode(_ bytes: [UInt8]) -> String {
        String(Base64.encode(bytes).compactMap { character -> Character? in
            switch character {
            case "+": "-"
            case "/": "_"
            case "=": nil
            default: character
            }
        })
    }

    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        decode(utf8: Array(text.utf8)[...])
    }

    /// `decode(_:)` over the text's UTF-8 bytes.
    public static func decode(utf8 text: ArraySlice<UInt8>) -> [UInt8]? {
        var standard: [UInt8] = []
        standard.reserveCapacity(text.count + 2)
        for byte in text {
            switch byte {
            case UInt8(ascii: "-"): standard.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): standard.append(UInt8(ascii: "/"))
            case UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="): return nil
            default: standard.append(byte)
            }
        }
        switch standard.count % 4 {
        case 2: standard += [UInt8(ascii: "="), UInt8(ascii: "=")]
        case 3: standard.append(UInt8(ascii: "="))
        case 1: return nil
        default: break
        }
        return Base64.decode(utf8: standard)
    }
}

/// Why a signed reading was refused.
public struct SignedObservationError: Error, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// Not a JWS compact serialization, or a header or payload we do not read.
        case malformed = "malformed_jws"
        /// `alg` is not EdDSA (`none` included).
        case algorithm = "unsupported_algorithm"
        /// The payload is not the RFC 8785 canonical form of a FHIR Observation.
        case payload = "invalid_payload"
    }

    public let kind: Kind
    public let message: String
    public var description: String { message }

    init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

/// A device's telemetry reading as it signs it: a JWS compact serialization (RFC 7515) with
/// `alg: EdDSA` (RFC 8037, Ed25519) whose payload is the RFC 8785 canonical bytes of one FHIR
/// Observation, and whose protected header binds the device and a per-device counter:
/// `{"alg":"EdDSA","kid":<key id>,"dev":<device id>,"ctr":<counter>,"iat":<signing time, seconds>}`.
/// Any JOSE library produces it by signing the canonical observation with those header parameters.
public struct SignedObservation: Sendable {
    public static let maximumLength = 65_536

    public let compact: String
    public let keyId: String
    public let deviceId: String
    public let counter: Int64
    /// Seconds since the epoch at which the device signed.
    public let issuedAt: Int64
    public let observation: JSONValue
    /// The payload: the observation's canonical bytes, exactly as signed.
    public let canonicalObservation: [UInt8]
    private let signingInput: [UInt8]
    private let signature: [UInt8]

    /// Reads the structure and refuses what is not ours to verify; the signature is checked by `verifies(with:)`.
    public init(compact: String) throws(SignedObservationError) {
        guard compact.utf8.count <= Self.maximumLength else {
            throw SignedObservationError(.malformed, "a signed observation is at most \(Self.maximumLength) bytes")
        }
        let bytes = Array(compact.utf8)
        let parts = bytes.split(separator: UInt8(ascii: "."), maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw SignedObservationError(.malformed, "a JWS compact serialization has three parts separated by dots") }
        guard let headerBytes = Base64URL.decode(utf8: parts[0]), let header = try? JSONParser.parse(headerBytes), case .object = header else {
            throw SignedObservationError(.malformed, "the JWS protected header is not base64url JSON")
        }
        guard let algorithm = header["alg"]?.stringValue else { throw SignedObservationError(.algorithm, "the JWS header names no alg") }
        guard algorithm == "EdDSA" else { throw SignedObservationError(.algorithm, "alg \(algorithm) is refused; telemetry is signed with EdDSA (Ed25519)") }
        if header["crit"] != nil { throw SignedObservationError(.malformed, "no JWS critical header parameter is understood here") }
        if header["b64"] != nil { throw SignedObservationError(.malformed, "an unencoded payload (b64) is not accepted") }
        guard let keyId = header["kid"]?.stringValue, Self.isToken(keyId) else {
            throw SignedObservationError(.malformed, "the JWS header names the device key as kid")
        }
        guard let deviceId = header["dev"]?.stringValue, Self.isToken(deviceId) else {
            throw SignedObservationError(.malformed, "the JWS header names the device as dev")
        }
        guard let counter = Self.integer(header["ctr"]), counter >= 0 else {
            throw SignedObservationError(.malformed, "the JWS header carries the device's counter as ctr, a non-negative integer")
        }
        guard let issuedAt = Self.integer(header["iat"]) else {
            throw SignedObservationError(.malformed, "the JWS header carries the signing time as iat, seconds since the epoch")
        }
        guard let payload = Base64URL.decode(utf8: parts[1]) else { throw SignedObservationError(.malformed, "the JWS payload is not base64url") }
        guard let observation = try? JSONParser.parse(payload), observation["resourceType"]?.stringValue == "Observation" else {
            throw SignedObservationError(.payload, "the JWS payload is not a FHIR Observation")
        }
        guard JCS.canonicalize(observation) == payload else {
            throw SignedObservationError(.payload, "the JWS payload is not the RFC 8785 canonical form of the observation")
        }
        guard let signature = Base64URL.decode(utf8: parts[2]), signature.count == 64 else {
            throw SignedObservationError(.malformed, "an Ed25519 signature is 64 bytes of base64url")
        }
        self.compact = compact
        self.keyId = keyId
        self.deviceId = deviceId
        self.counter = counter
        self.issuedAt = issuedAt
        self.observation = observation
        canonicalObservation = payload
        signingInput = Array(bytes[..<parts[1].endIndex])
        self.signature = signature
    }

    public func verifies(with key: Ed25519PublicKey) -> Bool {
        key.isValidSignature(signature, for: signingInput)
    }

    /// What a reading's ledger leaf commits to: the SHA-256 of the whole compact JWS, so the
    /// observation, the device, the counter and the signature are all covered.
    public var digest: [UInt8] { SHA256.digest(Array(compact.utf8)) }

    /// Signs `observation` as a device would; for tests, benchmarks and device simulators.
    public static func sign(_ observation: JSONValue, keyId: String, deviceId: String, counter: Int64, issuedAt: Int64,
                            with key: Ed25519PrivateKey) throws(CryptoError) -> String {
        let header = JSONValue.object([("alg", .string("EdDSA")), ("kid", .string(keyId)), ("dev", .string(deviceId)),
                                       ("ctr", .number(Double(counter))), ("iat", .number(Double(issuedAt)))])
        let input = Base64URL.encode(JCS.canonicalize(header)) + "." + Base64URL.encode(JCS.canonicalize(observation))
        return input + "." + Base64URL.encode(try key.signature(for: Array(input.utf8)))
    }

    /// Key and device ids: 1 to 128 printable ASCII characters, nothing a database or a log line would trip on.
    private static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 128 && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    private static func integer(_ value: JSONValue?) -> Int64? {
        guard let number = value?.numberValue, number.rounded() == number, abs(number) <= 9_007_199_254_740_991 else { return nil }
        return Int64(number)
    }
}
