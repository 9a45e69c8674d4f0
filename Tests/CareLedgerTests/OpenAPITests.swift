import Foundation
import CareLedger
import Postgres
import Testing

@Suite struct OpenAPITests {
    /// openapi-spec-validator (PyPI) checks the document against the OpenAPI 3.1 schema;
    /// deploy/test.sh installs it.
    @Test func specificationIsValidOpenAPI31() throws {
        let spec = RepositoryPaths.root.appendingPathComponent("openapi.yaml").path
        let result = try run("/usr/bin/env", ["python3", "-m", "openapi_spec_validator", spec])
        #expect(result.status == 0, "\(result.output)")
    }

    @Test func everyErrorCodeTheHTTPLayerEmitsIsDocumented() throws {
        let spec = try String(contentsOf: RepositoryPaths.root.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        for code in ["bad_request", "not_found", "method_not_allowed", "request_timeout", "body_too_large",
                     "uri_too_long", "headers_too_large", "expectation_failed", "internal_error",
                     "not_implemented", "unavailable", "http_version_not_supported", "database_unavailable", "not_ready",
                     "unauthenticated", "forbidden", "rate_limited", "conflict", "unsupported_media_type"] {
            #expect(spec.contains("- \(code)\n"), "\(code) missing from the Error schema")
        }
    }
}

@Suite struct OpenAPIRouteTests {
    /// openapi.yaml as JSON, via PyYAML (installed with openapi-spec-validator).
    private func specification() throws -> [String: Any] {
        let spec = RepositoryPaths.root.appendingPathComponent("openapi.yaml").path
        let result = try run("/usr/bin/env", ["python3", "-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", spec])
        #expect(result.status == 0, "\(result.output)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
    }

    @Test func everyRouteIsDocumentedWithItsRolesAndNothingElseIs() throws {
        let pool = PostgresPool(configuration: .init(conninfo: "postgresql:///unused?host=/nonexistent"))
        let routes = try Application.make(ApplicationContext(pool: pool, migrations: [], log: nil, ledger: try .unstarted(pool), patientKeys: try .forTests())).routes
        let paths = try #require(try specification()["paths"] as? [String: [String: Any]])
        var documented = Set<String>()
        for (path, item) in paths {
            for (method, operation) in item where ["get", "post", "put", "patch", "delete"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
                let operation = try #require(operation as? [String: Any])
                guard let route = routes.first(where: { $0.template == path && $0.method.rawValue == method.uppercased() }) else {
                    Issue.record("openapi.yaml documents \(method.uppercased()) \(path), which the server does not serve")
                    continue
                }
                if let action = route.action {
                    #expect(operation["x-action"] as? String == action.rawValue, "\(path) \(method)")
                    #expect(operation["x-roles"] as? [String] == PermissionMatrix.roles(for: action).map(\.rawValue), "\(path) \(method)")
                    let responses = try #require(operation["responses"] as? [String: Any])
                    #expect(responses["401"] != nil && responses["429"] != nil, "\(path) \(method)")
                    #expect((responses["403"] != nil) == (PermissionMatrix.roles(for: action).count < Role.allCases.count), "\(path) \(method)")
                } else {
                    #expect((operation["security"] as? [Any])?.isEmpty == true, "public \(path) must say security: []")
                }
            }
        }
        let served = Set(routes.map { "\($0.method.rawValue) \($0.template)" })
        #expect(served.subtracting(documented).isEmpty, "undocumented routes: \(served.subtracting(documented).sorted())")
    }
}
