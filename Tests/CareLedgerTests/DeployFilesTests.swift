@testable import CareLedgerCLI
import Foundation
import Testing

/// The deploy files that can be checked on this machine (the Docker engine is not here).
@Suite struct DeployFilesTests {
    static let deploy = RepositoryPaths.root.appendingPathComponent("deploy")

    @Test func theSystemdUnitIsHardenedAndVerifies() async throws {
        let unit = try String(contentsOf: Self.deploy.appendingPathComponent("systemd/careledger.service"), encoding: .utf8)
        for line in ["User=careledger", "ProtectSystem=strict", "NoNewPrivileges=yes", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
                     "CapabilityBoundingSet=", "serve --no-migrate --config /etc/careledger/careledger.conf"] {
            #expect(unit.contains(line), "\(line)")
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else { return }
        // The unit as installed, with the binary where this build put it.
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("careledger-\(UUID().uuidString).service")
        try unit.replacingOccurrences(of: "/opt/careledger/bin/careledger", with: RepositoryPaths.executable.path)
            .write(to: copy, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: copy) }
        let result = try await run(["systemd-analyze", "verify", copy.path])
        #expect(result.status == 0 && result.stderr.isEmpty, "\(result.stderr)")
    }

    /// The event loops pin themselves with sched_setaffinity, which the denied @resources group
    /// holds; without the unit taking it back, seccomp would kill the server at start.
    @Test func theSystemCallFilterKeepsWhatTheEventLoopsCall() async throws {
        let unit = try String(contentsOf: Self.deploy.appendingPathComponent("systemd/careledger.service"), encoding: .utf8)
        let filters = unit.split(separator: "\n").filter { $0.hasPrefix("SystemCallFilter=") }.map { $0.dropFirst("SystemCallFilter=".count) }
        let denied = filters.filter { $0.hasPrefix("~") }.flatMap { $0.dropFirst().split(separator: " ").map(String.init) }
        let deniedAt = filters.lastIndex { $0.hasPrefix("~") } ?? -1
        let allowedAfter = filters.enumerated().filter { $0.offset > deniedAt && !$0.element.hasPrefix("~") }
            .flatMap { $0.element.split(separator: " ").map(String.init) }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else { return }
        for call in ["sched_setaffinity", "sched_getaffinity", "epoll_create1", "epoll_ctl", "epoll_wait", "eventfd2"] {
            var deniedBy: [String] = []
            for group in denied where group.hasPrefix("@") {
                let members = try await run(["systemd-analyze", "syscall-filter", group]).stdout
                if members.split(whereSeparator: \.isWhitespace).contains(Substring(call)) { deniedBy.append(group) }
            }
            #expect(deniedBy.isEmpty || allowedAfter.contains(call), "\(call) is denied by \(deniedBy) and not allowed again")
        }
    }

    @Test func theExampleConfigNamesOnlyRealSettings() throws {
        var parsed = try ParsedArguments([], options: ServeCommand.options, flags: ["no-migrate", "ledger-public"])
        try parsed.readConfigFile(Self.deploy.appendingPathComponent("careledger.conf.example").path, options: ServeCommand.options, flags: ["no-migrate", "ledger-public"])
        #expect(parsed.value(of: ServeCommand.portOption, environment: [:]) == "8443")
        let environment = try String(contentsOf: Self.deploy.appendingPathComponent("careledger.env.example"), encoding: .utf8)
        let names = environment.split(separator: "\n").filter { !$0.hasPrefix("#") && $0.contains("=") }.map { String($0.split(separator: "=")[0]) }
        #expect(Set(names) == ["DATABASE_URL", "CARELEDGER_SIGNING_KEY_FILE", "CARELEDGER_MASTER_KEY_FILE", "CARELEDGER_MIGRATIONS_DIR"])
    }

    @Test func theDockerfileBuildsWhatTheRepositoryHas() throws {
        let dockerfile = try String(contentsOf: Self.deploy.appendingPathComponent("docker/Dockerfile"), encoding: .utf8)
        for path in dockerfile.split(separator: "\n").filter({ $0.hasPrefix("COPY ") && !$0.contains("--from") }).map({ String($0.split(separator: " ")[1]) }) {
            #expect(FileManager.default.fileExists(atPath: RepositoryPaths.root.appendingPathComponent(path).path), "\(path)")
        }
        #expect(dockerfile.contains("libpq5") && dockerfile.contains("libssl3") && dockerfile.contains("USER careledger"))
    }
}
