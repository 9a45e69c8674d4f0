@testable import CareLedger
import Foundation
import Testing
import TestSupport

/// No request may crash the server. Every route openapi.yaml documents gets the extremes of each of
/// its numeric, cursor and path parameters, sent by a key whose role may call it, to the real
/// `careledger serve` process: each answer must be JSON and below 500 (a 4xx error for anything that
/// is not a usable number), and the process must still be alive and answering after each one.
@Suite struct InputExtremesTests {
    static let int64Max = "9223372036854775807"
    /// Values that are never a valid number for any parameter, with why.
    static let invalidNumbers: [(value: String, why: String)] = [
        ("-1", "negative"), ("9223372036854775808", "Int64.max + 1"), ("1e400", "out of a double's range"), ("NaN", "not a number"),
        (String(repeating: "9", count: 10_000), "10,000 digits"), ("", "empty"),
        ("-9223372036854775809", "below Int64.min"), ("0x10", "hexadecimal"), ("1.5", "a fraction"), (" 1", "a leading space"),
    ]
    static let extremes = ["0", int64Max] + invalidNumbers.map(\.value)

    @Test func everyRouteSurvivesTheExtremesOfEveryNumberAndCursor() async throws {
        try await TestDatabase.withDatabase { conninfo in
            let (server, adminKey) = try await ServerProcess.serving(conninfo)
            defer { server.stop() }
            let client = Loopback(port: server.port)
            let keys = try await Self.keyPerRole(client, adminKey: adminKey)
            try await client.waitForSignedHead(key: adminKey)

            var sent = 0
            for operation in try OpenAPIDocument.load().operations {
                guard let role = operation.roles.first(where: { keys[$0] != nil }) ?? (operation.isPublic ? "admin" : nil), let key = keys[role] else {
                    Issue.record("no key for \(operation.method) \(operation.path) (roles \(operation.roles))")
                    continue
                }
                for parameter in operation.parameters where parameter.location != "header" {
                    for value in Self.extremes {
                        let target = operation.target(setting: parameter, to: value)
                        let label = "\(operation.method) \(target.prefix(160)) [\(parameter.name)=\(value.prefix(24))]"
                        let reply = try await Self.send(server, client, label) {
                            try await client.send(operation.method, target, key: key, body: operation.hasBody ? "{}" : nil)
                        }
                        sent += 1
                        #expect(reply.status < 500, "\(label) answered \(reply.status): \(reply.bodyText.prefix(300))")
                        #expect(Self.isJSON(reply), "\(label) answered \(reply.status) without a JSON body: \(reply.bodyText.prefix(300))")
                        if reply.status >= 400 {
                            #expect(Self.errorCode(reply) != nil, "\(label) answered \(reply.status) without the error shape")
                        }
                        if parameter.isInteger, Self.invalidNumbers.contains(where: { $0.value == value }) {
                            #expect((400..<500).contains(reply.status), "\(label) is not a number it can use, yet answered \(reply.status)")
                        }
                        try await Self.expectAlive(server, client, after: label)
                    }
                }
            }
            for (target, body) in Self.bodyExtremes() {
                let reply = try await Self.send(server, client, "POST \(target) \(body.prefix(80))") {
                    try await client.send("POST", target, key: adminKey, body: body)
                }
                sent += 1
                #expect((400..<500).contains(reply.status) && Self.errorCode(reply) != nil, "POST \(target) \(body.prefix(80)): \(reply.status) \(reply.bodyText.prefix(200))")
                try await Self.expectAlive(server, client, after: "POST \(target)")
            }
            #expect(sent > 500, "only \(sent) requests were sent: the route table was not read")
        }
    }

    /// Numbers inside JSON bodies, where the body decoder meets them.
    static func bodyExtremes() -> [(String, String)] {
        let numbers = ["-1", "0", "9223372036854775808", "1e400", "-1e400", String(repeating: "9", count: 10_000), "1.5"]
        return numbers.map { ("/v1/orgs/org_00000000000000000000000000/keys", #"{"role":"hospital","rateLimitPerSecond":\#($0)}"#) }
            + [("/v1/orgs", #"{"name":"x","kind":"hospital","extra":NaN}"#)]
    }

    /// The reply to one request; a request the server dies answering fails the test naming it.
    private static func send(_ server: ServerProcess, _ client: Loopback, _ label: String,
                             _ request: () async throws -> TestClient.Reply) async throws -> TestClient.Reply {
        do {
            return try await request()
        } catch {
            let state = !server.exits(within: .seconds(1)) ? "the server is still running" : "the server died: \(server.outputSoFar.suffix(1_500))"
            Issue.record("\(label) got no answer (\(error)); \(state)")
            throw error
        }
    }

    private static func expectAlive(_ server: ServerProcess, _ client: Loopback, after label: String) async throws {
        guard server.isRunning else {
            Issue.record("the server died after \(label): \(server.outputSoFar.suffix(2_000))")
            throw HarnessError("server died")
        }
        let health = try await client.send("GET", "/health", key: nil, body: nil)
        #expect(health.status == 200, "after \(label), /health answered \(health.status)")
    }

    private static func isJSON(_ reply: TestClient.Reply) -> Bool {
        (try? JSONSerialization.jsonObject(with: Data(reply.body), options: [.fragmentsAllowed])) != nil
            || reply.header("Content-Type")?.hasPrefix("text/plain") == true && reply.status == 200
    }

    private static func errorCode(_ reply: TestClient.Reply) -> String? {
        let json = try? JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any]
        return (json?["error"] as? [String: Any])?["code"] as? String
    }

    /// A key for every role, each in an organization of its own.
    static func keyPerRole(_ client: Loopback, adminKey: String) async throws -> [String: String] {
        var keys = ["admin": adminKey]
        var orgs: [String: String] = [:]
        for kind in ["hospital", "insurer", "national", "pharmacy", "manufacturer", "distributor", "auditor"] {
            let org = try await client.json("POST", "/v1/orgs", key: adminKey, body: #"{"name":"\#(kind)","kind":"\#(kind)"}"#)["id"] as? String
            let orgId = try #require(org)
            orgs[kind] = orgId
            keys[kind] = try #require(try await client.json("POST", "/v1/orgs/\(orgId)/keys", key: adminKey, body: #"{"role":"\#(kind)"}"#)["apiKey"] as? String)
        }
        let hospital = try #require(orgs["hospital"])
        let patient = try #require(try await client.json("POST", "/v1/patients", key: keys["hospital"],
                                                         body: #"{"resourceType":"Patient","identifier":[{"system":"urn:x","value":"1"}]}"#)["id"] as? String)
        keys["patient"] = try #require(try await client.json("POST", "/v1/orgs/\(hospital)/keys", key: adminKey,
                                                             body: #"{"role":"patient","patientId":"\#(patient)"}"#)["apiKey"] as? String)
        keys["device"] = try #require(try await client.json("POST", "/v1/orgs/\(hospital)/keys", key: adminKey,
                                                            body: #"{"role":"device","deviceId":"dev_00000000000000000000000000"}"#)["apiKey"] as? String)
        return keys
    }
}

/// One request per connection to a server on 127.0.0.1, each with a deadline.
struct Loopback: Sendable {
    let port: Int

    func send(_ method: String, _ target: String, key: String?, body: String?, headers: [(String, String)] = []) async throws -> TestClient.Reply {
        let client = try await TestClient.connect(port: port, receiveTimeout: .seconds(20))
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if let key { head += "Authorization: Bearer \(key)\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        let bytes = Array((body ?? "").utf8)
        if body != nil { head += "Content-Type: application/json\r\nContent-Length: \(bytes.count)\r\n" }
        try await client.send(Array((head + "\r\n").utf8) + bytes)
        return try await client.readReply(headOnly: method == "HEAD")
    }

    func json(_ method: String, _ target: String, key: String?, body: String? = nil) async throws -> [String: Any] {
        let reply = try await send(method, target, key: key, body: body)
        guard (200..<300).contains(reply.status), let json = try JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any] else {
            throw HarnessError("\(method) \(target): \(reply.status) \(reply.bodyText)")
        }
        return json
    }

    /// Returns once the log has its first signed head (the ledger routes answer 503 before that).
    func waitForSignedHead(key: String, deadline: Duration = .seconds(30)) async throws {
        try await waitUntil("the first signed tree head", deadline: deadline, every: .milliseconds(20)) {
            try await send("GET", "/v1/ledger/head", key: key, body: nil).status == 200
        }
    }
}

/// openapi.yaml, read through PyYAML (installed with openapi-spec-validator), as the operations it names.
struct OpenAPIDocument {
    struct Parameter {
        let name: String
        let location: String
        let isInteger: Bool
    }

    struct Operation {
        let method: String
        let path: String
        let roles: [String]
        let isPublic: Bool
        let parameters: [Parameter]

        var hasBody: Bool { ["POST", "PUT", "PATCH"].contains(method) }

        /// The path with each `{name}` filled in (with `value` for `parameter`, a plausible id for the
        /// rest), and the query parameter set when `parameter` is one.
        func target(setting parameter: Parameter, to value: String) -> String {
            var target = path
            for other in parameters where other.location == "path" {
                let filled = other.name == parameter.name ? value : (other.isInteger ? "0" : "x_00000000000000000000000000")
                target = target.replacingOccurrences(of: "{\(other.name)}", with: filled.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? filled)
            }
            if parameter.location == "query" {
                let encoded = value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? value
                target += "?\(parameter.name)=\(encoded)"
                // A long poll named by someone else's extremes must not wait.
                if parameter.name != "wait", parameters.contains(where: { $0.name == "wait" }) { target += "&wait=0" }
            }
            return target
        }
    }

    let root: [String: Any]

    static func load() throws -> OpenAPIDocument {
        let spec = RepositoryPaths.root.appendingPathComponent("openapi.yaml").path
        let result = try run("/usr/bin/env", ["python3", "-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", spec])
        guard result.status == 0, let root = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] else {
            throw HarnessError("cannot read openapi.yaml: \(result.output)")
        }
        return OpenAPIDocument(root: root)
    }

    var operations: [Operation] {
        let paths = root["paths"] as? [String: [String: Any]] ?? [:]
        var operations: [Operation] = []
        for (path, item) in paths.sorted(by: { $0.key < $1.key }) {
            let shared = (item["parameters"] as? [Any] ?? []).compactMap(parameter)
            for method in ["get", "post", "put", "patch", "delete"] {
                guard let operation = item[method] as? [String: Any] else { continue }
                let own = (operation["parameters"] as? [Any] ?? []).compactMap(parameter)
                operations.append(Operation(
                    method: method.uppercased(), path: path, roles: operation["x-roles"] as? [String] ?? [],
                    isPublic: (operation["security"] as? [Any])?.isEmpty == true, parameters: shared + own))
            }
        }
        return operations
    }

    private func parameter(_ value: Any) -> Parameter? {
        guard var object = value as? [String: Any] else { return nil }
        if let reference = object["$ref"] as? String, let name = reference.split(separator: "/").last {
            object = ((root["components"] as? [String: Any])?["parameters"] as? [String: Any])?[String(name)] as? [String: Any] ?? [:]
        }
        guard let name = object["name"] as? String, let location = object["in"] as? String else { return nil }
        let type = (object["schema"] as? [String: Any])?["type"] as? String
        return Parameter(name: name, location: location, isInteger: type == "integer")
    }
}
