@testable import CareLedger
import Foundation
import Postgres
import Testing
import TestSupport

/// `careledger migrate --app-role`: the serving role gets exactly what the schema needs, the server
/// runs as that role with `--no-migrate`, and the log stays append-only even to it.
@Suite struct AppRoleTests {
    @Test func theServerRunsAsTheAppRoleWhichCanOnlyAppendToTheLog() async throws {
        let role = "app_" + TestDatabase.uniqueName("r").lowercased()
        let admin = PostgresPool(configuration: .init(conninfo: try TestDatabase.url))
        try await admin.query(PostgresQuery(unsafeSQL: "CREATE ROLE \(role) LOGIN"))
        defer { Task { _ = try? await admin.query(PostgresQuery(unsafeSQL: "DROP ROLE IF EXISTS \(role)")) } }
        try await TestDatabase.withDatabase { conninfo in
            var environment = try serverEnvironment(conninfo)
            let adminKey = try await migrateAndBootstrap(environment)
            let granted = try await runProcess(RepositoryPaths.executable, ["migrate", "--app-role", role], environment: environment)
            #expect(granted.status == 0 && granted.stdout.contains("granted \(role) what serving needs on \(AppRoleGrants.tables.count) table(s)"),
                    "\(granted.stdout) \(granted.stderr)")

            // The server, as the app role, does everything it does.
            let appURL = TestDatabase.url(conninfo, adding: "user", role)
            environment["DATABASE_URL"] = appURL
            let server = try ServerProcess(environment: environment, arguments: ["--no-migrate", "--sequencing-wait-ms", "2000"])
            defer { server.stop() }
            let client = Loopback(port: server.port)
            let keys = try await InputExtremesTests.keyPerRole(client, adminKey: adminKey)
            let hospital = try #require(keys["hospital"]), insurer = try #require(keys["insurer"])
            let insurerOrg = try #require(try await client.json("GET", "/v1/me", key: insurer)["orgId"] as? String)
            let patient = try #require(try await client.json("POST", "/v1/patients", key: hospital,
                                                             body: #"{"resourceType":"Patient","identifier":[{"system":"urn:r","value":"9"}]}"#)["id"] as? String)
            let consent = try await client.json("POST", "/v1/patients/\(patient)/consents", key: hospital, body: """
                {"grantee":{"orgKind":"insurer"},"purposes":["HPAYMT"],"categories":["claim"],"evidenceHash":"sha256:\(String(repeating: "e", count: 64))"}
                """)
            #expect(consent["seq"] is Int, "the sequencer appends as the app role: \(consent)")
            let rule = try await client.send("POST", "/v1/claims/rules", key: insurer, body: #"{"name":"small","action":"approve","when":{"totalBelow":{"value":1000000,"currency":"USD"}}}"#)
            #expect(rule.status == 201, "\(rule.bodyText)")
            let claimDocument = String(decoding: try SharedFiles.data("fixtures/fhir/claim-example.json"), as: UTF8.self)
            let claim = try await client.json("POST", "/v1/claims", key: hospital,
                                              body: #"{"insurer":"\#(insurerOrg)","patient":"\#(patient)","claim":\#(claimDocument)}"#)
            #expect(claim["status"] as? String == "adjudicated", "\(claim)")
            let revoked = try await client.send("POST", "/v1/consents/\(consent["id"] as? String ?? "")/revoke", key: hospital, body: nil)
            #expect(revoked.status == 200, "UPDATE where state changes: \(revoked.bodyText)")
            // Prescribing, as the app role and in the shipped binary (which links FoundationEssentials
            // only: FHIR dates must parse without the internationalization module).
            let allergy = try await client.send("POST", "/v1/patients/\(patient)/allergies", key: hospital,
                                                body: String(decoding: try SharedFiles.data("fixtures/fhir/allergyintolerance-medication.json"), as: UTF8.self))
            #expect(allergy.status == 201, "\(allergy.bodyText)")
            let pharmacy = try #require(keys["pharmacy"])
            let pharmacyOrg = try #require(try await client.json("GET", "/v1/me", key: pharmacy)["orgId"] as? String)
            let prescribed = try await client.json("POST", "/v1/prescriptions", key: hospital, body: #"{"patient":"\#(patient)","medicationRequest":\#(PrescriptionWorld.request("197361", performer: pharmacyOrg))}"#)
            let prescription = try #require(prescribed["id"] as? String, "\(prescribed)")
            let filled = try await client.send("POST", "/v1/prescriptions/\(prescription)/dispense", key: pharmacy,
                                               body: #"{"medicationDispense":{"resourceType":"MedicationDispense","status":"completed","medicationCodeableConcept":{"coding":[{"system":"\#(PrescriptionWorld.rxnorm)","code":"197361"}]},"quantity":{"value":30,"unit":"TAB","code":"TAB"}}}"#)
            #expect(filled.status == 201, "\(filled.bodyText)")
            let cancelled = try await client.send("POST", "/v1/prescriptions/\(prescription)/cancel", key: hospital, body: nil)
            #expect(cancelled.status == 200, "\(cancelled.bodyText)")
            #expect(try await client.send("POST", "/v1/prescriptions/check", key: hospital,
                                          body: #"{"patient":"\#(patient)","medicationRequest":\#(PrescriptionWorld.request("308192"))}"#).status == 200)
            let auditor: String = try #require(keys["auditor"])
            #expect(try await client.send("GET", "/v1/audit", key: auditor, body: nil).status == 200)
            #expect(try await client.send("GET", "/ready", key: nil, body: nil).status == 200, "it reads the migration record")
            let verify = try await runProcess(RepositoryPaths.executable, ["verify", "--database"], environment: environment)
            #expect(verify.status == 0, "\(verify.stderr)")

            // Not even the server's own role can rewrite the log or the trails, or change the schema.
            let app = PostgresPool(configuration: .init(conninfo: appURL))
            defer { app.closeIdle() }
            for statement in ["UPDATE ledger_entries SET type = 'x'", "DELETE FROM ledger_entries", "DELETE FROM audit_events",
                              "UPDATE audit_events SET reason = 'x'", "UPDATE claim_events SET outcome = 'x'", "DELETE FROM claims",
                              "CREATE TABLE stray (x int)", "DELETE FROM schema_migrations"] {
                let error = await #expect(throws: PostgresError.self, "\(statement)") { try await app.query(PostgresQuery(unsafeSQL: statement)) }
                #expect(error?.sqlState == "42501", "\(statement): \(error.map { "\($0.sqlState ?? "-")" } ?? "allowed")")
            }

            // A table the grants do not know is refused, naming it; so is a role that does not exist.
            let owner = PostgresPool(configuration: .init(conninfo: conninfo))
            defer { owner.closeIdle() }
            try await owner.query("CREATE TABLE forgotten (x int)")
            let unknown = try await runProcess(RepositoryPaths.executable, ["migrate", "--app-role", role], environment: try serverEnvironment(conninfo))
            #expect(unknown.status == 1 && unknown.stderr.contains("table 'forgotten' has no grant for the app role"), "\(unknown.stderr)")
            try await owner.query("DROP TABLE forgotten")
            let missing = try await runProcess(RepositoryPaths.executable, ["migrate", "--app-role", "no_such_role"], environment: try serverEnvironment(conninfo))
            #expect(missing.status == 1 && missing.stderr.contains("role 'no_such_role' does not exist"), "\(missing.stderr)")
            let bad = try await runProcess(RepositoryPaths.executable, ["migrate", "--app-role", "Robert'); DROP"], environment: try serverEnvironment(conninfo))
            #expect(bad.status == 1 && bad.stderr.contains("must be a lower-case identifier"), "\(bad.stderr)")
            server.stop()
        }
    }
}
