@testable import Crypto
import Testing

@Suite struct SymmetricCryptoTests {
    /// McGrew and Viega, "The Galois/Counter Mode of Operation", test cases 13 and 14 (AES-256).
    @Test func gcmKnownAnswers() throws {
        let key = [UInt8](repeating: 0, count: 32), nonce = [UInt8](repeating: 0, count: 12)
        let empty = try AESGCM.seal([], key: key, nonce: nonce, authenticating: [])
        #expect(Hex.encode(Array(empty.dropFirst(12))) == "530f8afbc74536b9a963b4f1c4cb738b")
        let block = try AESGCM.seal([UInt8](repeating: 0, count: 16), key: key, nonce: nonce, authenticating: [])
        #expect(Hex.encode(Array(block.dropFirst(12))) == "cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919")
    }

    @Test func sealedBoxesOpenOnlyUnchangedWithTheirKeyAndContext() throws {
        let key = SecureRandom.bytes(32)
        let message = Array("Patient: Jane Doe, MRN 12345".utf8)
        let box = try AESGCM.seal(message, key: key, authenticating: Array("pat_1".utf8))
        #expect(try AESGCM.open(box, key: key, authenticating: Array("pat_1".utf8)) == message)
        #expect(try AESGCM.seal(message, key: key) != AESGCM.seal(message, key: key), "fresh nonce each time")
        for index in [0, 12, box.count - 1] {
            var altered = box
            altered[index] ^= 1
            #expect(throws: CryptoError.self) { try AESGCM.open(altered, key: key, authenticating: Array("pat_1".utf8)) }
        }
        #expect(throws: CryptoError.self) { try AESGCM.open(box, key: key, authenticating: Array("pat_2".utf8)) }
        #expect(throws: CryptoError.self) { try AESGCM.open(box, key: SecureRandom.bytes(32), authenticating: Array("pat_1".utf8)) }
        #expect(throws: CryptoError.self) { try AESGCM.open(Array(box.prefix(20)), key: key) }
    }

    /// RFC 4231 test cases 1 and 2.
    @Test func hmacKnownAnswers() {
        #expect(Hex.encode(HMACSHA256.authenticationCode(Array("Hi There".utf8), key: [UInt8](repeating: 0x0b, count: 20)))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(Hex.encode(HMACSHA256.authenticationCode(Array("what do ya want for nothing?".utf8), key: Array("Jefe".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }
}
