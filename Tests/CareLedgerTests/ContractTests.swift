@testable import CareLedger
import Foundation
import Testing
import TestSupport

/// The contract tested by a real client: schemathesis (PyPI; deploy/test.sh installs it) generates
/// requests from openapi.yaml for every operation and checks each answer, with the keys of several
/// roles against a live server: no 5xx, and every response as the document describes it.
@Suite struct ContractTests {
    @Test func schemathesisFindsNoServerErrorsAndNoResponseOutsideTheSchema() async throws {
        try await TestDatabase.withDatabase { conninfo in
            let (server, adminKey) = try await ServerProcess.serving(conninfo)
            defer { server.stop() }
            let base = "http://127.0.0.1:\(server.port)"
            func post(_ path: String, key: String, _ body: String) async throws -> [String: Any] {
                let result = try await run(["curl", "-s", "-H", "Authorization: Bearer \(key)", "-H", "Content-Type: application/json", "-d", body, base + path])
                return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
            }
            func organization(_ name: String, _ kind: String) async throws -> (org: String, key: String) {
                let org = try #require(try await post("/v1/orgs", key: adminKey, #"{"name":"\#(name)","kind":"\#(kind)"}"#)["id"] as? String)
                let key = try #require(try await post("/v1/orgs/\(org)/keys", key: adminKey, #"{"role":"\#(kind)"}"#)["apiKey"] as? String)
                return (org, key)
            }
            let hospital = try await organization("General", "hospital")
            let insurer = try await organization("Payer", "insurer")
            let national = try await organization("Ministry", "national")
            let pharmacy = try await organization("Chemist", "pharmacy")
            let manufacturer = try await organization("Maker", "manufacturer")
            let patient = try #require(try await post("/v1/patients", key: hospital.key,
                                                     #"{"resourceType":"Patient","identifier":[{"system":"urn:c","value":"1"}]}"#)["id"] as? String)
            _ = try await post("/v1/patients/\(patient)/consents", key: hospital.key,
                               #"{"grantee":{"orgKind":"insurer"},"purposes":["HPAYMT"],"categories":["claim"],"evidenceHash":"sha256:\#(String(repeating: "c", count: 64))"}"#)
            let scratch = try await organization("Scratch", "hospital")

            // Each role in turn, on its own organization; the admin last and on a scratch one, since
            // its generated requests rename and suspend the organization they name.
            for (name, key, org) in [("hospital", hospital.key, hospital.org), ("pharmacy", pharmacy.key, pharmacy.org), ("insurer", insurer.key, insurer.org),
                                     ("national", national.key, national.org), ("manufacturer", manufacturer.key, manufacturer.org),
                                     ("admin", adminKey, scratch.org)] {
                let config = FileManager.default.temporaryDirectory.appendingPathComponent("schemathesis-\(UUID().uuidString).toml")
                defer { try? FileManager.default.removeItem(at: config) }
                // Long polls answer at once (wait 0); otherwise generated waits of up to 30 s time out.
                try """
                    headers = { Authorization = "Bearer \(key)" }
                    [parameters]
                    "path.orgId" = "\(org)"
                    "path.patientId" = "\(patient)"
                    "query.wait" = 0
                    """.write(to: config, atomically: true, encoding: .utf8)
                let result = try await run([
                    "schemathesis", "--config-file", config.path, "run", RepositoryPaths.root.appendingPathComponent("openapi.yaml").path,
                    "--url", base, "--checks", "not_a_server_error,response_schema_conformance", "--max-examples", "10",
                    "--phases", "examples,coverage,fuzzing", "--generation-deterministic", "--no-color",
                ])
                let summary = result.stdout.split(separator: "\n").last { $0.contains("generated") } ?? "no summary"
                #expect(result.status == 0, "\(name): \(summary)\n\(result.stdout.suffix(4000))\(result.stderr.suffix(1000))")
                #expect(summary.contains("passed") && !summary.contains("failed") && !summary.contains("errored"), "\(name): \(summary)")
            }
        }
    }
}
