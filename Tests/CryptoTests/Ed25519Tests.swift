import Crypto
import Foundation
import Testing
import TestSupport

@Suite struct Ed25519Tests {
    struct Vector: Sendable, CustomStringConvertible {
        let name: String
        let secretKey: [UInt8]
        let publicKey: [UInt8]
        let message: [UInt8]
        let signature: [UInt8]
        var description: String { name }
    }

    static let vectors: [Vector] = {
        guard let json = try? SharedFiles.json("testvectors/ed25519/rfc8032-7.1.json"),
              let list = json["vectors"] as? [[String: Any]] else { return [] }
        return list.compactMap { item in
            guard let name = item["name"] as? String, let secret = (item["secret_key"] as? String).flatMap(Hex.decode),
                  let publicKey = (item["public_key"] as? String).flatMap(Hex.decode),
                  let message = (item["message"] as? String).flatMap(Hex.decode),
                  let signature = (item["signature"] as? String).flatMap(Hex.decode) else { return nil }
            return Vector(name: name, secretKey: secret, publicKey: publicKey, message: message, signature: signature)
        }
    }()

    @Test func everyRFC8032VectorIsRead() {
        #expect(Self.vectors.count == 5)
    }

    @Test(arguments: vectors)
    func signsAndVerifiesLikeRFC8032(vector: Vector) throws {
        let key = try Ed25519PrivateKey(seed: vector.secretKey)
        #expect(key.publicKey.rawRepresentation == vector.publicKey)
        #expect(try key.signature(for: vector.message) == vector.signature)
        #expect(key.publicKey.isValidSignature(vector.signature, for: vector.message))
    }

    @Test(arguments: vectors)
    func refusesEveryCorruption(vector: Vector) throws {
        let publicKey = try Ed25519PublicKey(rawRepresentation: vector.publicKey)
        for index in [0, 31, 32, 63] {
            var signature = vector.signature
            signature[index] ^= 0x01
            #expect(!publicKey.isValidSignature(signature, for: vector.message))
        }
        #expect(!publicKey.isValidSignature(vector.signature, for: vector.message + [0]))
        if !vector.message.isEmpty {
            var message = vector.message
            message[0] ^= 0x80
            #expect(!publicKey.isValidSignature(vector.signature, for: message))
        }
        #expect(!publicKey.isValidSignature(Array(vector.signature.dropLast()), for: vector.message))
        var otherKey = vector.publicKey
        otherKey[0] ^= 0x01
        #expect(!(try Ed25519PublicKey(rawRepresentation: otherKey)).isValidSignature(vector.signature, for: vector.message))
    }

    @Test func pemRoundTrips() throws {
        let key = try Ed25519PrivateKey()
        let pem = try key.pemRepresentation()
        #expect(pem.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        let read = try Ed25519PrivateKey(pem: pem)
        #expect(read.publicKey == key.publicKey)
        #expect(try read.signature(for: [1, 2, 3]) == key.signature(for: [1, 2, 3]))
        #expect(throws: CryptoError.self) { try Ed25519PrivateKey(pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n") }
    }

    @Test func base64IsStrict() {
        #expect(Base64.encode([]) == "" && Base64.encode([0x66]) == "Zg==" && Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        for length in 0..<40 {
            let bytes = SecureRandom.bytes(length)
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
        }
        for bad in ["Zg=", "Zh==", "Z===", "Zm9v YmFy", "Zm9v\nYmFy", "Zg==Zg==", "@@@@", "Zm9vY"] {
            #expect(Base64.decode(bad) == nil, "\(bad)")
        }
    }
}
