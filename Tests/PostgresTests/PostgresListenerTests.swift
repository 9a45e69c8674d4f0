import Postgres
import Testing
import TestSupport

@Suite struct PostgresListenerTests {
    /// The next event, or nil after `timeout` (so a lost notification fails the test instead of hanging it).
    private func next(
        _ stream: AsyncStream<PostgresListener.Event>, skippingReconnects: Bool, timeout: Duration = .seconds(10)
    ) async -> PostgresListener.Event? {
        await withTaskGroup(of: PostgresListener.Event?.self) { group in
            group.addTask {
                for await event in stream where !(skippingReconnects && event == .reconnected) { return event }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    @Test func deliversNotificationsAndSurvivesABackendKill() async throws {
        let url = try TestDatabase.url
        let channel = TestDatabase.uniqueName("feed")
        // No liveness query during the test: the backend is found by its last query, the LISTEN.
        let listener = try PostgresListener(conninfo: url, channels: [channel], reconnectDelay: .milliseconds(50), livenessInterval: .seconds(600))
        let events = listener.events()
        listener.start()
        #expect(await next(events, skippingReconnects: false) == .reconnected)

        let pool = PostgresPool(configuration: .init(conninfo: url))
        try await pool.query("SELECT pg_notify(\(channel), \("first"))")
        #expect(await next(events, skippingReconnects: true) == .notification(channel: channel, payload: "first"))

        // Kill the listening backend; the listener must reconnect and LISTEN again by itself.
        let killed = try await pool.query("""
            SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
            WHERE application_name = 'careledger' AND query = 'LISTEN ' || \(channel)
            """)
        #expect(killed.count == 1)
        #expect(await next(events, skippingReconnects: false) == .reconnected)
        try await pool.query("SELECT pg_notify(\(channel), \("second"))")
        #expect(await next(events, skippingReconnects: true) == .notification(channel: channel, payload: "second"))
        listener.stop()
    }

    @Test func channelNamesMustBePlainIdentifiers() {
        #expect(throws: PostgresError.self) { try PostgresListener(conninfo: "", channels: ["bad; DROP"]) }
        #expect(throws: PostgresError.self) { try PostgresListener(conninfo: "", channels: ["Upper"]) }
    }
}
