import Postgres
import Testing

@Suite struct PostgresListenerTests {
    /// The next event that is not `.reconnected`, or nil when the stream ends.
    private func nextNotification(_ iterator: inout AsyncStream<PostgresListener.Event>.Iterator) async -> PostgresListener.Event? {
        while let event = await iterator.next() {
            if event != .reconnected { return event }
        }
        return nil
    }

    @Test func deliversNotificationsAndSurvivesABackendKill() async throws {
        let url = try TestDatabase.url
        let channel = TestDatabase.uniqueName("feed")
        let listener = try PostgresListener(conninfo: url, channels: [channel], reconnectDelay: .milliseconds(50))
        var events = listener.events().makeAsyncIterator()
        listener.start()
        #expect(await events.next() == .reconnected)

        let pool = PostgresPool(configuration: .init(conninfo: url))
        try await pool.query("SELECT pg_notify(\(channel), \("first"))")
        #expect(await nextNotification(&events) == .notification(channel: channel, payload: "first"))

        // Kill the listening backend; the listener must reconnect and LISTEN again by itself.
        try await pool.query("""
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE application_name = 'careledger' AND query LIKE 'LISTEN ' || \(channel)
            """)
        #expect(await events.next() == .reconnected)
        try await pool.query("SELECT pg_notify(\(channel), \("second"))")
        #expect(await nextNotification(&events) == .notification(channel: channel, payload: "second"))
        listener.stop()
    }

    @Test func channelNamesMustBePlainIdentifiers() {
        #expect(throws: PostgresError.self) { try PostgresListener(conninfo: "", channels: ["bad; DROP"]) }
        #expect(throws: PostgresError.self) { try PostgresListener(conninfo: "", channels: ["Upper"]) }
    }
}
