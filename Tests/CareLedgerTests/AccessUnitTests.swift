@testable import CareLedger
import Foundation
import Testing

@Suite struct AccessUnitTests {
    @Test func generatedTokensParseBackAndMatchOnlyTheirDigest() throws {
        let (token, digest) = APIKeyToken.generate()
        let parsed = try #require(APIKeyToken(parsing: Substring(token.text)))
        #expect(parsed.keyId == token.keyId && parsed.matches(storedSHA256: digest))
        let other = APIKeyToken.generate()
        #expect(!parsed.matches(storedSHA256: other.secretSHA256))
        #expect(APIKeyToken(authorization: "Bearer \(token.text)")?.keyId == token.keyId)
        #expect(APIKeyToken(authorization: "bearer  \(token.text)")?.keyId == token.keyId)
    }

    @Test(arguments: [
        "", "clk", "clk_", "clk__", "clk_bad", "clk_key__x", "clk_key_06h161e40yjs3kwrwyv5pywpzg_",
        "clk_key_06h161e40yjs3kwrwyv5pywpzg_" + String(repeating: "a", count: 51),
        "clk_key_06h161e40yjs3kwrwyv5pywpzg_" + String(repeating: "u", count: 52),
        "clk_org_06h161e40yjs3kwrwyv5pywpzg_" + String(repeating: "a", count: 52),
        "xyz_key_06h161e40yjs3kwrwyv5pywpzg_" + String(repeating: "a", count: 52),
        "clk_key_06h161e40yjs3kwrwyv5pywpz_" + String(repeating: "a", count: 52), "_", "__", "clk_\u{1F600}_x",
    ])
    func malformedTokensAreRefusedWithoutCrashing(text: String) {
        #expect(APIKeyToken(parsing: Substring(text)) == nil)
        #expect(APIKeyToken(authorization: "Bearer " + text) == nil)
    }

    /// Thousands of near-misses of a real token (characters replaced, dropped, inserted, from a
    /// seeded generator so a failure reproduces), and random text: each parses exactly when an
    /// independent reading of the format says it should, and then into the right parts.
    @Test func nearMissesParseExactlyWhenTheFormatSaysSo() {
        var random = SplitMix64(seed: 0x6361_7265_6C65_6467)
        let valid = APIKeyToken.generate().token.text
        let alphabet = Array("clk_key0123456789abcdefghjkmnpqrstvwxyzilou_ -")
        var accepted = 0
        for round in 0..<20_000 {
            var text = Array(round % 4 == 0 ? "" : valid)
            for _ in 0...(random.next() % 3) {
                let position = Int(random.next() % UInt64(text.count + 1))
                let character = alphabet[Int(random.next() % UInt64(alphabet.count))]
                switch random.next() % 3 {
                case 0 where position < text.count: text[position] = character
                case 1 where position < text.count: text.remove(at: position)
                default: text.insert(character, at: position)
                }
            }
            if round % 4 == 0 { text = (0..<Int(random.next() % 90)).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] } }
            let candidate = String(text)
            let parsed = APIKeyToken(authorization: "Bearer " + candidate)
            let expected = Self.oracle(candidate)
            #expect(parsed?.keyId == expected?.keyId && parsed?.text == expected.map { "clk_\($0.keyId)_\($0.secret)" }, "\(candidate)")
            if parsed != nil { accepted += 1 }
        }
        // Replacing a character with another of the alphabet keeps many near-misses valid: the
        // oracle's "yes" answers were exercised, not only its "no".
        #expect(accepted > 100, "only \(accepted) accepted")
    }

    /// The token format written out independently: after the spaces that end `Bearer `, `clk_`,
    /// `key_` and 26 Crockford base32 characters, `_`, 52 more.
    private static func oracle(_ text: String) -> (keyId: String, secret: String)? {
        let crockford = Set("0123456789abcdefghjkmnpqrstvwxyz")
        let characters = Array(text.drop { $0 == " " })
        guard characters.count == 4 + 4 + 26 + 1 + 52, String(characters[0..<8]) == "clk_key_", characters[34] == "_",
              characters[8..<34].allSatisfy(crockford.contains), characters[35...].allSatisfy(crockford.contains) else { return nil }
        return (String(characters[4..<34]), String(characters[35...]))
    }

    @Test func idsArePrefixedTimeOrderedAndWellFormed() {
        let earlier = ResourceID.generate("org", now: Date(timeIntervalSince1970: 1_700_000_000))
        let later = ResourceID.generate("org", now: Date(timeIntervalSince1970: 1_700_000_000.002))
        #expect(earlier < later)
        #expect(ResourceID.isWellFormed(earlier, prefix: "org") && !ResourceID.isWellFormed(earlier, prefix: "key"))
        #expect(!ResourceID.isWellFormed("org_short", prefix: "org"))
        #expect(Set((0..<1000).map { _ in ResourceID.generate("org") }).count == 1000)
    }

    @Test func tokenBucketsRefillAndReportRetryAfter() {
        let limiter = RateLimiter(period: .seconds(1))
        let start = ContinuousClock.now
        #expect((0..<5).map { _ in limiter.take("k", capacity: 5, now: start) } == [nil, nil, nil, nil, nil])
        #expect(limiter.take("k", capacity: 5, now: start) == 1)
        #expect(limiter.take("other", capacity: 5, now: start) == nil)
        #expect(limiter.take("k", capacity: 5, now: start + .milliseconds(250)) == nil, "a fifth of a second refills one token")
        let slow = RateLimiter(period: .seconds(60))
        for _ in 0..<2 { _ = slow.take("a", capacity: 2, now: start) }
        #expect(slow.retryAfter("a", capacity: 2, now: start) == 30)
    }

    @Test func tokensTakenElsewhereAreMissingHereAndTakenOnesAreReported() {
        let limiter = RateLimiter(period: .seconds(1))
        let start = ContinuousClock.now
        limiter.charge("k", tokens: 4, now: start)
        #expect(limiter.take("k", capacity: 5, now: start) == nil)
        #expect(limiter.take("k", capacity: 5, now: start) == 1, "four taken elsewhere and one here empty a bucket of five")
        #expect(limiter.take("k", capacity: 5, now: start + .milliseconds(200)) == nil, "and it refills as usual")
        limiter.charge("k", tokens: 3, now: start + .milliseconds(200))
        #expect(limiter.retryAfter("k", capacity: 5, now: start + .milliseconds(200)) == 1)
        #expect(limiter.drainTaken() == ["k": 2])
        #expect(limiter.drainTaken() == [:], "each grant is reported once")
    }

    @Test func theBucketTableStaysBounded() {
        let limiter = RateLimiter(period: .seconds(1), maximumTracked: 10)
        let start = ContinuousClock.now
        for index in 0..<10 { _ = limiter.take("busy-\(index)", capacity: 1, now: start) }
        // All ten are empty, so a newcomer is not tracked, but it is not refused either.
        #expect(limiter.take("new", capacity: 1, now: start) == nil)
        // Once the old buckets have refilled they make room.
        _ = limiter.take("later", capacity: 1, now: start + .seconds(2))
        #expect(limiter.take("later", capacity: 1, now: start + .seconds(2)) == 1)
    }
}

@Suite struct ResourceIDOrderTests {
    @Test func idsMadeInTheSameMillisecondStillSortInCreationOrder() {
        let now = Date()
        let ids = (0..<500).map { _ in ResourceID.generate("org", now: now) }
        #expect(ids == ids.sorted() && Set(ids).count == 500)
    }
}

/// A small seeded generator (SplitMix64), so a randomized test is the same test every run.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
