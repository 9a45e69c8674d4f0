@testable import CareLedger
import Foundation
import Testing
import TestSupport

/// A throwaway PKI made with the openssl command line: a CA, a server certificate for localhost,
/// a client certificate from the CA, and a client certificate from a CA the server does not trust.
struct TestPKI {
    let folder: URL

    init() async throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("pki-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(to: folder.appendingPathComponent("san.ext"), atomically: true, encoding: .utf8)
        for ca in ["ca", "other-ca"] {
            try await openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(ca).key",
                               "-out", "\(ca).pem", "-days", "2", "-subj", "/CN=\(ca)"])
        }
        try await issue("server", by: "ca", extensions: true)
        try await issue("client", by: "ca")
        try await issue("stranger", by: "other-ca")
        for name in ["ca", "other-ca", "server", "client", "stranger"] {
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path("\(name).key"))
        }
    }

    func path(_ name: String) -> String {
        folder.appendingPathComponent(name).path
    }

    func issue(_ name: String, by ca: String, extensions: Bool = false, serial: String? = nil) async throws {
        try await openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(name).key", "-out", "\(name).csr",
                           "-subj", "/CN=\(name == "server" ? "localhost" : name)"])
        var arguments = ["x509", "-req", "-in", "\(name).csr", "-CA", "\(ca).pem", "-CAkey", "\(ca).key", "-out", "\(name).pem", "-days", "2"]
        arguments += serial.map { ["-set_serial", $0] } ?? ["-CAcreateserial"]
        if extensions { arguments += ["-extfile", "san.ext"] }
        try await openssl(arguments)
    }

    /// The certificate's SHA-256 as `openssl x509 -fingerprint` prints it.
    func fingerprint(_ name: String) async throws -> String {
        let result = try await run(["openssl", "x509", "-in", path("\(name).pem"), "-noout", "-fingerprint", "-sha256"])
        return String(result.stdout.split(separator: "=").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func remove() {
        try? FileManager.default.removeItem(at: folder)
    }

    private func openssl(_ arguments: [String]) async throws {
        let result = try await run(["sh", "-c", "cd '\(folder.path)' && openssl " + arguments.map { "'\($0)'" }.joined(separator: " ")])
        guard result.status == 0 else { throw HarnessError("openssl \(arguments.first ?? ""): \(result.stderr)") }
    }
}

func run(_ arguments: [String], stdin: String? = nil) async throws -> ProcessResult {
    try await ChildProcess.run(URL(fileURLWithPath: "/usr/bin/env"), arguments, stdin: stdin)
}

@Suite struct TLSTests {
    @Test func httpsWithModernTLSOnlyAndClientCertificatesThatStandForKeys() async throws {
        let pki = try await TestPKI()
        defer { pki.remove() }
        try await TestDatabase.withDatabase { conninfo in
            let environment = try serverEnvironment(conninfo)
            let adminKey = try await migrateAndBootstrap(environment)
            let server = try ServerProcess(environment: environment, arguments: [
                "--no-migrate", "--tls-cert", pki.path("server.pem"), "--tls-key", pki.path("server.key"), "--tls-client-ca", pki.path("ca.pem"),
            ])
            defer { server.stop() }
            let base = "https://localhost:\(server.port)"
            func curl(_ extra: [String]) async throws -> ProcessResult {
                try await run(["curl", "-sS", "--cacert", pki.path("ca.pem")] + extra)
            }

            // The handshake, and a JSON API over it (keep-alive, a body both ways).
            let health = try await curl(["\(base)/health"])
            #expect(health.status == 0 && health.stdout.contains(#""status":"ok""#), "\(health.stderr)")
            let org = try await curl(["-H", "Authorization: Bearer \(adminKey)", "-H", "Content-Type: application/json",
                                      "-d", #"{"name":"Mutual","kind":"hospital"}"#, "\(base)/v1/orgs"])
            let orgId = try #require((try JSONSerialization.jsonObject(with: Data(org.stdout.utf8)) as? [String: Any])?["id"] as? String)
            // A server certificate from a CA the client does not trust: curl refuses (exit 60).
            #expect(try await run(["curl", "-sS", "--cacert", pki.path("other-ca.pem"), "\(base)/health"]).status == 60)
            // TLS 1.1 is refused even by a client willing to speak it.
            let old = try await run(["sh", "-c", "echo | openssl s_client -connect 127.0.0.1:\(server.port) -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' 2>&1"])
            #expect(old.stdout.contains("alert protocol version") || old.stdout.contains("Cipher is (NONE)"), "\(old.stdout)")
            let modern = try await run(["sh", "-c", "echo | openssl s_client -connect 127.0.0.1:\(server.port) -tls1_3 2>&1"])
            #expect(modern.stdout.contains("TLSv1.3"))
            // Plain HTTP on the TLS port: a clear 400 and the close, not a hang.
            let plain = try await run(["curl", "-sS", "--max-time", "5", "http://127.0.0.1:\(server.port)/health"])
            #expect(plain.stdout.contains("tls_required"), "\(plain.stdout) \(plain.stderr)")

            // Mutual TLS: a key bound to the client certificate's fingerprint authenticates it.
            let bound = try await curl(["-H", "Authorization: Bearer \(adminKey)", "-H", "Content-Type: application/json",
                                        "-d", #"{"role":"hospital","certificateSha256":"\#(try await pki.fingerprint("client"))"}"#,
                                        "\(base)/v1/orgs/\(orgId)/keys"])
            #expect(bound.stdout.contains("certificateSha256") && !bound.stdout.contains("apiKey"), "\(bound.stdout)")
            let me = try await curl(["--cert", pki.path("client.pem"), "--key", pki.path("client.key"), "\(base)/v1/me"])
            #expect(me.stdout.contains(#""orgId":"\#(orgId)""#), "\(me.stdout)")
            // No certificate, or one from a CA the server does not trust: unauthenticated.
            #expect(try await curl(["\(base)/v1/me"]).stdout.contains("unauthenticated"))
            let stranger = try await curl(["--cert", pki.path("stranger.pem"), "--key", pki.path("stranger.key"), "\(base)/v1/me"])
            #expect(!stranger.stdout.contains(orgId))

            // Clients that hang up mid-answer: the server's writes to them (and its close_notify)
            // meet a closed socket, which must not end the process (SIGPIPE).
            let hangUps = try await run(["python3", "-c", """
                import socket, ssl
                context = ssl.create_default_context(cafile='\(pki.path("ca.pem"))')
                sent = 0
                for _ in range(40):
                    raw = socket.create_connection(('127.0.0.1', \(server.port)))
                    tls = context.wrap_socket(raw, server_hostname='localhost')
                    try:
                        tls.sendall(b'GET /health HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' * 20)
                        sent += 1
                    except OSError:
                        pass
                    tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00')
                    tls.close()
                print(sent)
                """])
            #expect(hangUps.status == 0 && hangUps.stdout.contains("40"), "\(hangUps.stdout) \(hangUps.stderr)")
            #expect(try await curl(["\(base)/health"]).stdout.contains("ok"), "the server survived clients hanging up")

            // SIGHUP: new connections get the new certificate; the server keeps serving.
            func servedSerial() async throws -> String {
                try await run(["sh", "-c", "echo | openssl s_client -connect 127.0.0.1:\(server.port) 2>/dev/null | openssl x509 -noout -serial"]).stdout
            }
            let before = try await servedSerial()
            // A keep-alive connection open across the reload: one request before, one after.
            // The client says when its first answer is in (a file), and asks again once told the
            // reload took effect (another file); each side waits on the other, never on a clock.
            let asked = pki.path("asked-once"), reloaded = pki.path("reloaded")
            async let acrossReload = run(["python3", "-c", """
                import os, socket, ssl, time
                context = ssl.create_default_context(cafile='\(pki.path("ca.pem"))')
                tls = context.wrap_socket(socket.create_connection(('127.0.0.1', \(server.port))), server_hostname='localhost')
                def ask():
                    tls.sendall(b'GET /health HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')
                    answer = b''
                    while b'"status":"ok"' not in answer:
                        chunk = tls.recv(4096)
                        if not chunk: return 'closed'
                        answer += chunk
                    return answer.split(b' ')[1].decode()
                first = ask()
                open('\(asked)', 'w').close()
                deadline = time.time() + 30
                while not os.path.exists('\(reloaded)') and time.time() < deadline:
                    time.sleep(0.01)
                print(first, ask())
                """])
            try await waitUntil("the keep-alive client has its first answer") { FileManager.default.fileExists(atPath: asked) }
            try await pki.issue("server", by: "ca", extensions: true, serial: "4242")
            server.signal(SIGHUP)
            // serial 4242 is 0x1092
            try await waitUntil("new connections get the new certificate (was \(before))", every: .milliseconds(50)) {
                try await servedSerial().contains("1092")
            }
            #expect(FileManager.default.createFile(atPath: reloaded, contents: nil))
            #expect(try await curl(["\(base)/health"]).status == 0)
            let kept = try await acrossReload
            #expect(kept.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "200 200", "an open connection outlives the reload: \(kept.stdout) \(kept.stderr)")
        }
    }

    @Test func tlsSettingsAreCheckedAtStart() async throws {
        let pki = try await TestPKI()
        defer { pki.remove() }
        let environment = try serverEnvironment("postgresql:///unused")
        for (arguments, message) in [
            (["--tls-cert", pki.path("server.pem")], "--tls-cert and --tls-key go together"),
            (["--tls-cert", pki.path("server.pem"), "--tls-key", pki.path("client.key")], "key values mismatch"),
            (["--tls-cert", pki.path("missing.pem"), "--tls-key", pki.path("server.key")], "certificate chain"),
        ] {
            let result = try await runProcess(RepositoryPaths.executable, ["serve"] + arguments, environment: environment)
            #expect(result.status == 64 && result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
    }
}
