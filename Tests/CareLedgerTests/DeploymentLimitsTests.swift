@testable import CareLedger
import Postgres
import Testing
import TestSupport

/// Two instances of the deployment against one database: what one grants is charged to the other's
/// buckets, and the connections one holds count against the other's per-address limit.
@Suite struct DeploymentLimitsTests {
    @Test func twoInstancesShareKeyRatesFailureBudgetsAndConnections() async throws {
        try await TestDatabase.withSchema { pool in
            try await Migrator(pool: pool).migrate(try Migration.load(directory: OpsRoutesTests.migrationsDirectory))
            let limitsA = AccessLimits(), limitsB = AccessLimits()
            let a = DeploymentLimits(pool: pool, limits: limitsA), b = DeploymentLimits(pool: pool, limits: limitsB)
            try await a.sync(localConnections: [:])
            try await b.sync(localConnections: [:])

            // A key with two requests a second spends both on A; B knows once the news arrives.
            #expect(limitsA.buckets.requests.take("key_1", capacity: 2) == nil && limitsA.buckets.requests.take("key_1", capacity: 2) == nil)
            #expect(limitsB.buckets.requests.retryAfter("key_1", capacity: 2) == nil, "before a round, B knows only its own grants")
            // Four failed authentications from one address on A use up a budget of four a minute.
            for _ in 0..<4 { #expect(limitsA.buckets.failures.take("192.0.2.7", capacity: 4) == nil) }
            try await a.sync(localConnections: ["192.0.2.7": 3, "192.0.2.8": 1])
            try await b.sync(localConnections: [:])
            #expect(limitsB.buckets.requests.take("key_1", capacity: 2) != nil, "the key's two a second were spent on A")
            #expect(limitsB.buckets.failures.take("192.0.2.7", capacity: 4) == 15, "the address's four a minute were spent on A")
            #expect(limitsB.buckets.requests.take("key_2", capacity: 2) == nil, "other keys are untouched")
            #expect(b.openConnections(from: "192.0.2.7") == 3 && b.openConnections(from: "192.0.2.8") == 1 && b.openConnections(from: "192.0.2.9") == 0)
            #expect(a.openConnections(from: "192.0.2.7") == 0, "an instance does not count its own twice")

            // A round with no news charges nothing again; connections closed on A are gone from B.
            try await a.sync(localConnections: ["192.0.2.7": 1])
            try await b.sync(localConnections: [:])
            #expect(limitsB.buckets.failures.retryAfter("192.0.2.7", capacity: 4) == 15, "still four missing, not eight")
            #expect(b.openConnections(from: "192.0.2.7") == 1 && b.openConnections(from: "192.0.2.8") == 0)

            // And the other way round: what B grants, A is charged.
            try await a.sync(localConnections: [:])
            #expect(limitsB.buckets.requests.take("key_3", capacity: 2) == nil && limitsB.buckets.requests.take("key_3", capacity: 2) == nil)
            try await b.sync(localConnections: [:])
            try await a.sync(localConnections: [:])
            #expect(limitsA.buckets.requests.take("key_3", capacity: 2) != nil)
        }
    }
}
