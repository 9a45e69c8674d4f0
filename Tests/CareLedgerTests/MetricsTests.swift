@testable import CareLedger
import Foundation
import Testing
import TestSupport

@Suite struct MetricsTests {
    @Test func prometheusMetricsForTheConfiguredScraperOnly() async throws {
        try await TestDatabase.withDatabase { conninfo in
            let environment = try serverEnvironment(conninfo)
            let adminKey = try await migrateAndBootstrap(environment)
            let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString)")
            try "scrape-token-0123456789\n".write(to: tokenFile, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: tokenFile.path)
            defer { try? FileManager.default.removeItem(at: tokenFile) }
            let server = try ServerProcess(environment: environment, arguments: [
                "--no-migrate", "--metrics-allow", "192.0.2.77", "--metrics-token-file", tokenFile.path, "--auth-failure-limit", "2",
            ])
            defer { server.stop() }
            let base = "http://127.0.0.1:\(server.port)"
            func curl(_ arguments: [String]) async throws -> String {
                try await run(["curl", "-s"] + arguments).stdout
            }
            _ = try await curl(["\(base)/health"])
            _ = try await curl(["\(base)/v1/orgs/org_nope", "-H", "Authorization: Bearer \(adminKey)"])
            // Three failed authentications from one address in a minute, with a limit of two: a 429.
            for _ in 0..<3 { _ = try await curl(["\(base)/v1/me", "-H", "Authorization: Bearer clk_bad"]) }

            #expect(try await curl(["-o", "/dev/null", "-w", "%{http_code}", "\(base)/metrics"]) == "403", "127.0.0.1 is not in --metrics-allow")
            #expect(try await curl(["-o", "/dev/null", "-w", "%{http_code}", "-H", "Authorization: Bearer wrong-token-0123456", "\(base)/metrics"]) == "403")
            let text = try await curl(["-H", "Authorization: Bearer scrape-token-0123456789", "\(base)/metrics"])
            #expect(text.contains(#"careledger_http_requests_total{route="/health",method="GET",status="200"} 1"#), "\(text)")
            #expect(text.contains(#"careledger_http_requests_total{route="/v1/orgs/{orgId}",method="GET",status="404"} 1"#))
            #expect(text.contains(#"careledger_http_request_duration_seconds_count{route="/health",method="GET"} 1"#))
            #expect(text.contains("careledger_http_open_connections 1"))
            #expect(text.contains(#"careledger_denials_total{code="not_found"} 1"#))
            #expect(text.contains("careledger_rate_limited_total 1"), "the third failed authentication")
            #expect(text.contains("careledger_ledger_entries ") && text.contains("careledger_ledger_sequencing_lag_seconds "))
            #expect(text.contains(#"careledger_db_pool_connections{state="in_use"}"#) && text.contains("careledger_db_pool_waiting 0"))
            #expect(text.contains(#"careledger_db_pool_connections{state="pipelined"}"#))
            #expect(text.contains("careledger_consent_denials_total 0") && text.contains("careledger_break_the_glass_total 0"))
        }
    }
}
