import Crypto
import Testing

@Suite struct SecretsTests {
    @Test func randomBytesAreFreshEachTime() {
        let samples = (0..<64).map { _ in SecureRandom.bytes(32) }
        #expect(samples.allSatisfy { $0.count == 32 })
        #expect(Set(samples).count == 64)
    }

    @Test func constantTimeEqualityIsEquality() {
        #expect(ConstantTime.equals([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2]))
        #expect(ConstantTime.equals([], []))
    }

    @Test func base32IsCrockfordLowercaseAndOrderPreserving() {
        #expect(Base32.encode([]) == "")
        #expect(Base32.encode([0]) == "00")
        #expect(Base32.encode([0xFF]) == "zw")
        #expect(Base32.encode(Array("foobar".utf8)) == "csqpyrk1e8")
        #expect(Base32.encode(SecureRandom.bytes(32)).count == 52)
        #expect(Base32.isValid("0123456789abcdefghjkmnpqrstvwxyz"))
        for letter in ["i", "l", "o", "u", "A", "_", "-"] { #expect(!Base32.isValid(Substring(letter))) }
        // Big-endian bytes compare like their encodings, which makes time-prefixed ids sortable.
        for _ in 0..<200 {
            let a = SecureRandom.bytes(6), b = SecureRandom.bytes(6)
            #expect(a.lexicographicallyPrecedes(b) == Base32.encode(a).utf8.lexicographicallyPrecedes(Base32.encode(b).utf8))
        }
    }
}
