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

    @Test func randomGarbageNeverCrashesTheParser() {
        let alphabet = Array("clk_key0123456789abz_ ")
        for _ in 0..<20_000 {
            let text = String((0..<Int.random(in: 0...90)).map { _ in alphabet.randomElement()! })
            _ = APIKeyToken(authorization: "Bearer " + text)
        }
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
