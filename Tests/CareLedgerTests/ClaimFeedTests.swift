@testable import CareLedger
import Foundation
import Testing
import TestSupport

/// The feed's promise under real concurrency: submitters on two server processes, a poller
/// following the insurer's feed through both, every claim seen exactly once, in ledger order.
@Suite struct ClaimFeedTests {
    static let claims = 60

    @Test func concurrentSubmittersOnTwoInstancesNeverMakeThePollerSkipOrRepeat() async throws {
        try await TestDatabase.withDatabase { conninfo in
            let environment = try serverEnvironment(conninfo)
            let adminKey = try await migrateAndBootstrap(environment)
            let first = try ServerProcess(environment: environment, arguments: ["--no-migrate", "--key-rate-limit", "10000"])
            let second = try ServerProcess(environment: environment, arguments: ["--no-migrate", "--key-rate-limit", "10000"])
            defer {
                first.stop()
                second.stop()
            }
            let ports = [first.port, second.port]
            func call(_ port: Int, _ method: String, _ path: String, key: String, body: String? = nil) async throws -> [String: Any] {
                var arguments = ["curl", "-s", "-X", method, "-H", "Authorization: Bearer \(key)", "http://127.0.0.1:\(port)\(path)"]
                if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
                let result = try await runProcess(URL(fileURLWithPath: "/usr/bin/env"), arguments, environment: [:])
                return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
            }
            func id(_ reply: [String: Any], _ field: String = "id") throws -> String {
                guard let value = reply[field] as? String else { throw HarnessError("no \(field) in \(reply)") }
                return value
            }
            let hospitalOrg = try id(try await call(ports[0], "POST", "/v1/orgs", key: adminKey, body: #"{"name":"General","kind":"hospital"}"#))
            let insurerOrg = try id(try await call(ports[0], "POST", "/v1/orgs", key: adminKey, body: #"{"name":"Payer","kind":"insurer"}"#))
            let hospital = try id(try await call(ports[0], "POST", "/v1/orgs/\(hospitalOrg)/keys", key: adminKey, body: #"{"role":"hospital"}"#), "apiKey")
            let insurer = try id(try await call(ports[0], "POST", "/v1/orgs/\(insurerOrg)/keys", key: adminKey, body: #"{"role":"insurer"}"#), "apiKey")
            let patient = try id(try await call(ports[0], "POST", "/v1/patients", key: hospital,
                                                body: #"{"resourceType":"Patient","identifier":[{"system":"urn:n","value":"f1"}]}"#))
            _ = try id(try await call(ports[1], "POST", "/v1/patients/\(patient)/consents", key: hospital, body: """
                {"grantee":{"orgKind":"insurer"},"purposes":["HPAYMT"],"categories":["claim"],"evidenceHash":"sha256:\(String(repeating: "c", count: 64))"}
                """))
            let claim = String(decoding: try SharedFiles.data("fixtures/fhir/claim-example.json"), as: UTF8.self)

            // The poller starts first and follows the feed through both instances, small pages, long-polling.
            let poller = Task { () throws -> [(cursor: Int, claimId: String)] in
                var seen: [(cursor: Int, claimId: String)] = []
                var cursor: String?
                let deadline = ContinuousClock.now + .seconds(60)
                var round = 0
                while seen.count < Self.claims, ContinuousClock.now < deadline {
                    let after = cursor.map { "&after=\($0)" } ?? ""
                    let page = try await call(ports[round % 2], "GET", "/v1/claims/feed?limit=7&wait=2\(after)", key: insurer)
                    round += 1
                    for item in page["items"] as? [[String: Any]] ?? [] {
                        seen.append((Int(item["cursor"] as? String ?? "") ?? -1, item["claimId"] as? String ?? ""))
                    }
                    cursor = page["cursor"] as? String ?? cursor
                }
                return seen
            }
            let submitted = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in 0..<6 {
                    group.addTask {
                        var ids: [String] = []
                        for index in stride(from: worker, to: Self.claims, by: 6) {
                            let reply = try await call(ports[index % 2], "POST", "/v1/claims", key: hospital,
                                                       body: #"{"insurer":"\#(insurerOrg)","patient":"\#(patient)","claim":\#(claim)}"#)
                            ids.append(try id(reply))
                        }
                        return ids
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            let seen = try await poller.value
            #expect(submitted.count == Self.claims && Set(submitted).count == Self.claims)
            #expect(seen.count == Self.claims, "the poller saw \(seen.count) of \(Self.claims)")
            #expect(Set(seen.map(\.claimId)) == Set(submitted), "every claim, and only those")
            #expect(Set(seen.map(\.claimId)).count == seen.count, "none twice")
            #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.cursor < $1.cursor }, "in ledger order")
        }
    }
}

/// The feed's paging over long stretches of the log that hold nothing for the caller.
@Suite struct LedgerFeedWindowTests {
    @Test func aPollerWalksPastOtherOrganizationsEntriesWithoutMissingItsOwn() async throws {
        try await APIHarness.with { api in
            let world = try await ClaimWorld.make(api)
            let claim = try ClaimWorld.fixture("claim-example")
            let firstId = try #require(await world.submit(claim)["id"])
            // More than a request's worth of windows of other entries, then a second claim.
            let filler = LedgerFeed.scanWindow * LedgerFeed.windowsPerRequest + 10
            try await api.ledger.enqueueLoad(type: "anchor", actor: "x", refs: (1...filler).map { "r\($0)" },
                                             hashes: Array(repeating: "sha256:00", count: filler))
            let secondId = try #require(await world.submit(claim)["id"])
            while try await api.ledger.sequencer.sequenceBatch() > 0 {}

            var seen: [String] = []
            var cursor: String?
            var requests = 0
            repeat {
                let page = await api.call(.get, "/v1/claims/feed?limit=1" + (cursor.map { "&after=\($0)" } ?? ""), key: world.insurer)
                #expect(page.status == 200)
                seen += page.items.compactMap { $0["claimId"] as? String }
                cursor = page.json["cursor"] as? String
                requests += 1
                if page.json["next"] as? String == nil && page.items.isEmpty { break }
            } while requests < 20
            #expect(seen == [firstId, secondId])
            #expect(requests >= 3, "a request reads a bounded number of windows")
        }
    }
}
