@testable import CareLedger
import HTTP
import IOLoop
import Testing
import TestSupport

/// The domain tests run their handlers as the server does: on the event loops, so their reads take
/// the loops' pipelined connections.
@Suite struct HarnessTests {
    @Test func requestsAreHandledOnTheEventLoopsAndReadThroughThePipelines() async throws {
        try await APIHarness.with { api in
            // Pipelines open in the background on a loop's first read; until then reads use the pool.
            try await waitUntil("every loop has its pipeline") {
                for _ in IOEventLoop.all { #expect(await api.call(.get, "/v1/me", key: api.adminKey).status == 200) }
                return api.pool.statistics.pipelined == IOEventLoop.all.count
            }
        }
    }
}
