@testable import CareLedger
import Foundation
import HTTP
import Postgres
import Synchronization
import Testing

@Suite struct AuditTests {
    /// Every request writes an audit event, so the batcher may hold the writers' lock only for a
    /// moment: it waits for a writer whose transaction is open (and then anchors that writer's
    /// event), but while it reads, hashes and commits a batch, writers carry on.
    @Test func theAuditBatchWaitsForOpenWritersAndWritersNeverWaitForTheBatch() async throws {
        try await APIHarness.with { api in
            let store = AuditStore()
            let event = AuditEvent(requestId: "req-open-writer", actorOrg: nil, keyId: nil, role: nil, action: "test.write", resourceType: nil,
                                   resourceId: nil, patientId: nil, purpose: nil, decision: .permit, reason: "an open writer", clientAddress: nil)
            let batches: @Sendable () async throws -> Int64 = {
                try await api.pool.query("SELECT count(*) AS n FROM audit_batches")[0].decode("n", as: Int64.self)
            }
            let before = try await batches()
            let anchoring = try await api.pool.withTransaction { open in
                try await store.record(event, on: open)
                let anchoring = Task { try await api.ledger.sequencer.anchorAuditEvents() }
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await batches() == before, "a batch was made while a writer's transaction was open")
                return anchoring
            }
            #expect(try await anchoring.value >= 1)
            let covering = try await api.pool.query("""
                SELECT count(*) AS n FROM audit_batches b JOIN audit_events e ON e.seq BETWEEN b.first_seq AND b.last_seq
                WHERE e.request_id = 'req-open-writer'
                """)[0].decode("n", as: Int64.self)
            #expect(covering == 1)

            // A batch in progress holds its own lock; a writer meanwhile must not wait (5 s, then 55P03).
            try await api.pool.withTransaction { batching in
                try await batching.query("SELECT pg_advisory_xact_lock(\(LedgerStore.auditBatchLock), hashtext(current_schema()))")
                try await api.pool.withTransaction { writer in
                    try await writer.query("SET LOCAL lock_timeout = '5s'")
                    try await store.record(event, on: writer)
                }
            }
        }
    }

    @Test func auditorsPageThroughTheTrailWithFilters() async throws {
        try await APIHarness.with { api in
            let auditorOrg = try await api.createOrg("Watchdog", "auditor")
            let auditor = try await api.issueKey(auditorOrg, "auditor")
            let hospital = try await api.createOrg("General", "hospital")
            let hospitalKey = try await api.issueKey(hospital, "hospital")
            #expect(await api.call(.get, "/v1/audit", key: hospitalKey.apiKey).status == 403)
            #expect(await api.call(.get, "/v1/audit", key: api.adminKey).status == 403, "admins see no patient data")

            var seqs: [Int] = []
            var cursor: String?
            repeat {
                let reply = await api.call(.get, "/v1/audit?limit=3" + (cursor.map { "&after=\($0)" } ?? ""), key: auditor.apiKey)
                #expect(reply.status == 200)
                seqs += reply.items.compactMap { $0["seq"] as? Int }
                cursor = reply["next"]
            } while cursor != nil
            #expect(seqs == seqs.sorted() && Set(seqs).count == seqs.count && seqs.count >= 6)

            let byActor = await api.call(.get, "/v1/audit?actor=\(hospital)", key: auditor.apiKey)
            #expect(byActor.items.count == 1, "the hospital's denied call")
            #expect(byActor.items.allSatisfy { $0["actorOrg"] as? String == hospital && $0["decision"] as? String == "deny" })
            let byAction = await api.call(.get, "/v1/audit?action=orgs.create", key: auditor.apiKey)
            #expect(byAction.items.count == 2 && byAction.items.allSatisfy { $0["resourceType"] as? String == "organization" })
            let byPatient = await api.call(.get, "/v1/audit?patient=pat_06h161e40yjs3kwrwyv5pywpzg", key: auditor.apiKey)
            #expect(byPatient.status == 200 && byPatient.items.isEmpty)
            #expect(await api.call(.get, "/v1/audit?after=abc", key: auditor.apiKey).status == 400)
            // Reading the trail is on the trail.
            let reads = try await api.auditEvents(where: "action = 'audit.read' AND decision = 'permit'")
            #expect(reads.count >= 4 && reads.allSatisfy { $0["actor_org"] == auditorOrg })
        }
    }

    @Test(arguments: ["UPDATE audit_events SET reason = 'x'", "DELETE FROM audit_events", "TRUNCATE audit_events"])
    func theDatabaseRefusesToRewriteTheTrail(statement: String) async throws {
        try await APIHarness.with { api in
            await #expect(throws: PostgresError.self) { try await api.pool.query(PostgresQuery(unsafeSQL: statement)) }
            let events = try await api.auditEvents()
            #expect(events.count >= 1)
        }
    }
}

@Suite struct RateLimitTests {
    /// Time stands still unless the test moves it, so the answers do not depend on how fast a busy
    /// machine gets through the requests.
    @Test func aKeyOverItsRateGets429WithRetryAfter() async throws {
        let clock = Mutex(ContinuousClock.now)
        var limits = AccessLimits(clock: { clock.withLock { $0 } })
        limits.keyRequestsPerSecond = APIHarness.generousLimits.keyRequestsPerSecond
        limits.authFailuresPerMinute = APIHarness.generousLimits.authFailuresPerMinute
        try await APIHarness.with(limits: limits) { api in
            let org = try await api.createOrg("Busy", "insurer")
            let key = try await api.issueKey(org, "insurer", extra: #","rateLimitPerSecond":3"#)
            var statuses: [Int] = []
            for _ in 0..<4 { statuses.append(await api.call(.get, "/v1/me", key: key.apiKey).status) }
            #expect(statuses == [200, 200, 200, 429])
            let limited = await api.call(.get, "/v1/me", key: key.apiKey)
            #expect(limited.status == 429 && limited.errorCode == "rate_limited")
            #expect(limited.response.headers.first(name: "Retry-After") == "1", "a token is a third of a second away")
            // Other keys are not held back.
            #expect(await api.call(.get, "/v1/me", key: api.adminKey).status == 200)
            // A third of a second gives back one token, and only one.
            clock.withLock { $0 = $0.advanced(by: .milliseconds(334)) }
            #expect(await api.call(.get, "/v1/me", key: key.apiKey).status == 200)
            #expect(await api.call(.get, "/v1/me", key: key.apiKey).status == 429)
            // A full second later the bucket is full again: three, then no more.
            clock.withLock { $0 = $0.advanced(by: .seconds(1)) }
            statuses = []
            for _ in 0..<4 { statuses.append(await api.call(.get, "/v1/me", key: key.apiKey).status) }
            #expect(statuses == [200, 200, 200, 429])
        }
    }

    @Test func anAddressOverItsFailureBudgetIsRefusedFailuresButNeverValidKeys() async throws {
        var limits = APIHarness.generousLimits
        limits.authFailuresPerMinute = 3
        try await APIHarness.with(limits: limits) { api in
            let shared = "198.51.100.7"
            for _ in 0..<3 {
                #expect(await api.call(.get, "/v1/me", key: "clk_wrong", client: shared).status == 401)
            }
            // Over the budget, a failed attempt is refused (429) and nothing more is written...
            for bad in ["clk_wrong", "clk_key_06h161e40yjs3kwrwyv5pywpzg_" + String(repeating: "a", count: 52)] {
                let refused = await api.call(.get, "/v1/me", key: bad, client: shared)
                #expect(refused.status == 429 && refused.response.headers.first(name: "Retry-After") != nil && refused.errorCode == "rate_limited")
            }
            #expect(await api.call(.get, "/v1/me", key: nil, client: shared).status == 429)
            // ...while a key that verifies, from the very same address, goes through: one broken
            // client behind a NAT or a proxy locks nobody else out.
            #expect(await api.call(.get, "/v1/me", key: api.adminKey, client: shared).status == 200)
            #expect(await api.call(.get, "/v1/me", key: "clk_wrong", client: "198.51.100.8").status == 401, "other addresses have their own budget")
            let failures = try await api.auditEvents(where: "reason = 'unauthenticated'")
            #expect(failures.count == 4, "attempts over the budget are not written")
        }
    }
}
