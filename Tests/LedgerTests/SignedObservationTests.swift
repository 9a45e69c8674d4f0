import Crypto
import Ledger
import Testing

@Suite struct SignedObservationTests {
    private let observation = JSONValue.object([
        ("resourceType", .string("Observation")), ("status", .string("final")),
        ("code", .object([("text", .string("heart rate"))])), ("subject", .object([("reference", .string("Patient/pat_1"))])),
        ("device", .object([("reference", .string("Device/dev_1"))])), ("valueQuantity", .object([("value", .number(72)), ("unit", .string("/min"))])),
    ])

    /// RFC 8037 Appendix A.4: the Ed25519 JWS over "Example of Ed25519 signing" verifies with A.2's key.
    @Test func rfc8037ExampleVerifies() throws {
        let key = try Ed25519PublicKey(rawRepresentation: try #require(Base64URL.decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")))
        let header = "eyJhbGciOiJFZERTQSJ9", payload = "RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
        let signature = try #require(Base64URL.decode("hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"))
        #expect(Base64URL.decode(payload).map { String(decoding: $0, as: UTF8.self) } == "Example of Ed25519 signing")
        #expect(key.isValidSignature(signature, for: Array("\(header).\(payload)".utf8)))
        #expect(Base64URL.encode(signature) == "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg")
        #expect(Base64URL.decode("a+b") == nil && Base64URL.decode("YQ==") == nil && Base64URL.decode("Y") == nil)
    }

    @Test func signedReadingVerifiesAndTamperingDoesNot() throws {
        let key = try Ed25519PrivateKey()
        let compact = try SignedObservation.sign(observation, keyId: "dk_1", deviceId: "dev_1", counter: 7, issuedAt: 1_796_000_000, with: key)
        let read = try SignedObservation(compact: compact)
        #expect(read.keyId == "dk_1" && read.deviceId == "dev_1" && read.counter == 7 && read.issuedAt == 1_796_000_000)
        #expect(read.canonicalObservation == JCS.canonicalize(observation))
        #expect(read.verifies(with: key.publicKey))
        #expect(!read.verifies(with: try Ed25519PrivateKey().publicKey))
        #expect(read.digest == SHA256.digest(Array(compact.utf8)))

        // The same observation with another value, under the old signature.
        let parts = compact.split(separator: ".").map(String.init)
        var changed = observation
        if case .object(var members) = changed {
            members[5] = ("valueQuantity", .object([("value", .number(180)), ("unit", .string("/min"))]))
            changed = .object(members)
        }
        let forged = try SignedObservation(compact: parts[0] + "." + Base64URL.encode(JCS.canonicalize(changed)) + "." + parts[2])
        #expect(!forged.verifies(with: key.publicKey))
    }

    @Test func refusals() throws {
        let key = try Ed25519PrivateKey()
        let good = try SignedObservation.sign(observation, keyId: "dk_1", deviceId: "dev_1", counter: 1, issuedAt: 0, with: key)
        let parts = good.split(separator: ".").map(String.init)
        func kind(_ text: String) -> SignedObservationError.Kind? {
            do { _ = try SignedObservation(compact: text); return nil } catch { return error.kind }
        }
        func header(_ json: String) -> String { Base64URL.encode(Array(json.utf8)) }
        #expect(kind(header(#"{"alg":"none","kid":"dk_1","dev":"dev_1","ctr":1,"iat":0}"#) + "." + parts[1] + ".") == .algorithm)
        #expect(kind(header(#"{"alg":"none","kid":"dk_1","dev":"dev_1","ctr":1,"iat":0}"#) + "." + parts[1] + "." + parts[2]) == .algorithm)
        #expect(kind(header(#"{"alg":"HS256","kid":"dk_1","dev":"dev_1","ctr":1,"iat":0}"#) + "." + parts[1] + "." + parts[2]) == .algorithm)
        #expect(kind(header(#"{"alg":"EdDSA","kid":"dk_1","dev":"dev_1","iat":0}"#) + "." + parts[1] + "." + parts[2]) == .malformed)
        #expect(kind(header(#"{"alg":"EdDSA","kid":"dk_1","dev":"dev_1","ctr":1.5,"iat":0}"#) + "." + parts[1] + "." + parts[2]) == .malformed)
        #expect(kind(header(#"{"alg":"EdDSA","kid":"dk_1","dev":"dev_1","ctr":1,"iat":0,"crit":["x"]}"#) + "." + parts[1] + "." + parts[2]) == .malformed)
        // Not canonical: the same observation with a space.
        let spaced = Base64URL.encode(Array(#"{"resourceType": "Observation"}"#.utf8))
        #expect(kind(parts[0] + "." + spaced + "." + parts[2]) == .payload)
        #expect(kind(parts[0] + "." + Base64URL.encode(Array(#"{"resourceType":"Patient"}"#.utf8)) + "." + parts[2]) == .payload)
        #expect(kind(parts[0] + "." + parts[1]) == .malformed)
        #expect(kind(parts[0] + "." + parts[1] + "." + Base64URL.encode([1, 2, 3])) == .malformed)
    }
}
