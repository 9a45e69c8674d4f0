import Foundation
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
                     "not_implemented", "unavailable", "http_version_not_supported", "database_unavailable", "not_ready"] {
            #expect(spec.contains("- \(code)\n"), "\(code) missing from the Error schema")
        }
    }
}
