@testable import CareLedger
import Crypto
import Foundation
import HTTP
import Ledger
import Postgres
import Testing
import TestSupport

/// `careledger verify` against real tampering, done as the database superuser with triggers off.
@Suite struct LedgerVerifyTests {
    /// A log with anchors and anchored audit batches, fully sequenced.
    private func populate(_ api: APIHarness) async throws -> String {
        let org = try await api.createOrg("General", "hospital")
        let key = try await api.issueKey(org, "hospital").apiKey
        for index in 0..<10 {
            let hash = "sha256:" + SHA256.hexDigest(Array("doc \(index)".utf8))
            let reply = await api.call(.post, "/v1/ledger/anchors", key: key, body: #"{"hash":"\#(hash)","kind":"lab-report","reference":"r\#(index)"}"#)
            #expect(reply.status == 201)
            if index % 4 == 0 {
                _ = await api.call(.get, "/v1/orgs", key: key)
                try await api.ledger.sequencer.anchorAuditEvents()
            }
        }
        try await api.ledger.sequencer.anchorAuditEvents()
        try await api.ledger.sequencer.sequenceBatch()
        return key
    }

    private func tamper(_ api: APIHarness, _ sql: String) async throws {
        try await api.pool.withConnection { connection in
            try await connection.script("SET session_replication_role = replica")
            try await connection.script(sql)
            try await connection.script("RESET session_replication_role")
        }
    }

    private func failure(_ api: APIHarness, trustedHead: String? = nil) async throws -> VerificationFailure? {
        do {
            _ = try await LedgerVerifier(pool: api.pool).verify(trustedHead: trustedHead)
            return nil
        } catch let failure as VerificationFailure {
            return failure
        }
    }

    @Test func anIntactLogVerifies() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            _ = try await populate(api)
            let report = try await LedgerVerifier(pool: api.pool).verify()
            #expect(report.entries >= 13 && report.heads >= 2 && report.keys == 1)
            #expect(report.anchoredObjects["anchor"] == 10 && (report.anchoredObjects["audit.batch"] ?? 0) >= 3)
        }
    }

    struct Tamper: Sendable, CustomStringConvertible {
        let description: String
        let sql: @Sendable (_ size: Int64) -> String
        let table: String
        let seq: @Sendable (_ size: Int64) -> Int64?
    }

    static let tampers: [Tamper] = [
        Tamper(description: "one byte of an entry", sql: { _ in "UPDATE ledger_entries SET entry = overlay(entry placing '\\x5a'::bytea from 3 for 1) WHERE seq = 5" },
               table: "ledger_entries", seq: { _ in 5 }),
        Tamper(description: "a stored subtree hash", sql: { _ in "UPDATE ledger_nodes SET hash = sha256(hash) WHERE level = 2 AND idx = 1" },
               table: "ledger_nodes", seq: { _ in 4 }),
        Tamper(description: "a head's signature", sql: { size in
                   "UPDATE ledger_heads SET checkpoint = regexp_replace(checkpoint, ' (.)([^ ]*)\\n$', ' \\2\\1' || E'\\n') WHERE tree_size = \(size)" },
               table: "ledger_heads", seq: { $0 }),
        Tamper(description: "the last entry deleted", sql: { size in "DELETE FROM ledger_entries WHERE seq = \(size - 1)" },
               table: "ledger_entries", seq: { $0 - 1 }),
        Tamper(description: "two entries swapped", sql: { _ in """
                   UPDATE ledger_entries e SET entry = o.entry, leaf_hash = o.leaf_hash
                   FROM ledger_entries o WHERE (e.seq, o.seq) IN ((3, 7), (7, 3))
                   """ }, table: "ledger_entries", seq: { _ in 3 }),
        Tamper(description: "an anchored audit event", sql: { _ in
                   "UPDATE audit_events SET reason = 'nothing to see' WHERE seq = (SELECT min(first_seq) FROM audit_batches)" },
               table: "audit_events", seq: { _ in nil }),
        // Numbers at their extremes in stored rows are findings, never a trap of the verifier.
        Tamper(description: "the last entry's seq set to Int64.max", sql: { size in
                   "UPDATE ledger_entries SET seq = 9223372036854775807 WHERE seq = \(size - 1)" }, table: "ledger_entries", seq: { $0 - 1 }),
        Tamper(description: "a head claiming Int64.max entries", sql: { size in
                   "UPDATE ledger_heads SET tree_size = 9223372036854775807 WHERE tree_size = \(size)" }, table: "ledger_entries", seq: { $0 }),
        Tamper(description: "an entry no signed head covers", sql: { size in """
                   INSERT INTO ledger_entries (seq, entry, leaf_hash, queue_id, type, ref, enqueued_at, sequenced_at)
                   SELECT seq + 1, entry, leaf_hash, queue_id + 1000000, type, ref, enqueued_at, sequenced_at FROM ledger_entries WHERE seq = \(size - 1)
                   """ }, table: "ledger_entries", seq: { $0 }),
        Tamper(description: "an audit batch starting at Int64.min", sql: { _ in
                   "UPDATE audit_batches SET first_seq = -9223372036854775808 WHERE first_seq = (SELECT min(first_seq) FROM audit_batches)" },
               table: "audit_batches", seq: { _ in nil }),
        Tamper(description: "a subtree at index Int64.max", sql: { _ in
                   "UPDATE ledger_nodes SET idx = 9223372036854775807 WHERE level = 1 AND idx = 0" }, table: "ledger_nodes", seq: { _ in 2 }),
    ]

    @Test(arguments: tampers)
    func tamperingIsFoundWhereItHappened(tamper: Tamper) async throws {
        try await APIHarness.with(runningLedger: true) { api in
            _ = try await populate(api)
            await api.ledger.stop()
            let size = try #require(try await api.ledger.store.latestHead(on: api.pool)).treeSize
            #expect(try await failure(api) == nil)
            try await self.tamper(api, tamper.sql(size))
            let found = try #require(try await failure(api), "\(tamper) went unnoticed")
            #expect(found.table == tamper.table, "\(found)")
            if let seq = tamper.seq(size) { #expect(found.seq == seq, "\(found)") } else { #expect(found.seq != nil, "\(found)") }
        }
    }

    /// A server that keeps sequencing while verify runs is not mistaken for tampering: verify
    /// covers the log as its latest signed head had it when it began.
    @Test func aLiveLogVerifiesWhileItGrows() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            let key = try await populate(api)
            let writers = Task {
                for index in 0..<150 {
                    let hash = "sha256:" + SHA256.hexDigest(Array("live \(index)".utf8))
                    _ = await api.call(.post, "/v1/ledger/anchors", key: key, body: #"{"hash":"\#(hash)","kind":"lab-report","reference":"l\#(index)"}"#)
                }
            }
            var verified = 0
            while !writers.isCancelled, verified < 15 {
                let report = try await LedgerVerifier(pool: api.pool).verify()
                #expect(report.entries > 0)
                verified += 1
            }
            await writers.value
            #expect(try await failure(api) == nil)
        }
    }

    @Test func aRewrittenAndResignedHistoryIsCaughtByATrustedHead() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            _ = try await populate(api)
            await api.ledger.stop()
            let trusted = try #require(try await api.ledger.store.latestHead(on: api.pool)).checkpoint
            #expect(try await failure(api, trustedHead: trusted) == nil)
            // An insider with the signing key rewrites the log from scratch, one entry shorter, and
            // re-signs: internally consistent, so only the saved checkpoint shows it.
            try await tamper(api, "DELETE FROM ledger_heads; DELETE FROM ledger_nodes; DELETE FROM ledger_entries; DELETE FROM audit_batches; DELETE FROM ledger_anchors")
            let rewriter = LedgerSequencer(pool: api.pool, conninfo: api.pool.configuration.conninfo, signer: api.ledger.signer)
            try await api.ledger.store.enqueue(LedgerItem(type: "note", actor: "x", ref: "y", hash: "sha256:" + String(repeating: "1", count: 64)), on: api.pool)
            try await rewriter.sequenceBatch()
            #expect(try await failure(api) == nil, "the rewritten log is self-consistent")
            let found = try #require(try await failure(api, trustedHead: trusted))
            #expect(found.table == "trusted head" && found.detail.contains("truncated"))
        }
    }

    @Test func theCommandLineVerifiesTheDatabaseAndReceipts() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            let key = try await populate(api)
            await api.ledger.stop()
            var environment = ProcessInfo.processInfo.environment
            environment["DATABASE_URL"] = api.pool.configuration.conninfo
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("verify-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let keyFile = folder.appendingPathComponent("key.pub")
            try api.ledger.signer.verifier.text.write(to: keyFile, atomically: true, encoding: .utf8)
            let trusted = folder.appendingPathComponent("head.txt")
            try #require(try await api.ledger.store.latestHead(on: api.pool)).checkpoint.write(to: trusted, atomically: true, encoding: .utf8)

            let ok = try await runProcess(RepositoryPaths.executable, ["verify", "--database", "--trusted-head", trusted.path, "--key", keyFile.path], environment: environment)
            #expect(ok.status == 0, "\(ok.stderr)")
            #expect(ok.stdout.contains(#""verified":true"#) && ok.stdout.contains(#""entries":"#))

            let receipt = await api.call(.get, "/v1/ledger/receipts/2", key: key)
            let receiptFile = folder.appendingPathComponent("receipt.json")
            try Data(receipt.response.body).write(to: receiptFile)
            let offline = try await runProcess(RepositoryPaths.executable, ["verify", "--receipt", receiptFile.path, "--key", keyFile.path], environment: [:])
            #expect(offline.status == 0 && offline.stdout.contains(#""seq":2"#), "\(offline.stderr)")
            let otherKey = folder.appendingPathComponent("other.pub")
            try Base64.encode(try Ed25519PrivateKey().publicKey.rawRepresentation).write(to: otherKey, atomically: true, encoding: .utf8)
            let wrongKey = try await runProcess(RepositoryPaths.executable, ["verify", "--receipt", receiptFile.path, "--key", otherKey.path], environment: [:])
            #expect(wrongKey.status == 1 && wrongKey.stderr.contains("receipt FAILED"))

            // The log's key as people hold it: the PEM public key `openssl pkey -pubout` prints.
            let privateFile = folder.appendingPathComponent("signing.pem"), pemFile = folder.appendingPathComponent("log.pem")
            try api.ledger.signer.key.pemRepresentation().write(to: privateFile, atomically: true, encoding: .utf8)
            let pubout = try await runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["openssl", "pkey", "-in", privateFile.path, "-pubout", "-out", pemFile.path], environment: [:])
            #expect(pubout.status == 0, "\(pubout.stderr)")
            let withPEM = try await runProcess(RepositoryPaths.executable, ["verify", "--receipt", receiptFile.path, "--key", pemFile.path], environment: [:])
            #expect(withPEM.status == 0 && withPEM.stdout.contains(#""verified":true"#), "\(withPEM.stderr)")
            let rsaFile = folder.appendingPathComponent("rsa.pem")
            _ = try await runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["sh", "-c", "openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 2>/dev/null | openssl pkey -pubout -out '\(rsaFile.path)'"], environment: [:])
            let notEd25519 = try await runProcess(RepositoryPaths.executable, ["verify", "--receipt", receiptFile.path, "--key", rsaFile.path], environment: [:])
            #expect(notEd25519.status != 0 && notEd25519.stderr.contains("not an Ed25519 public key"), "\(notEd25519.stderr)")

            try await tamper(api, "UPDATE ledger_nodes SET hash = sha256(hash) WHERE level = 1 AND idx = 2")
            let broken = try await runProcess(RepositoryPaths.executable, ["verify", "--database"], environment: environment)
            #expect(broken.status == 1 && broken.stderr.contains("FAILED: ledger_nodes at seq 4"), "\(broken.stderr)")
            let usage = try await runProcess(RepositoryPaths.executable, ["verify"], environment: environment)
            #expect(usage.status == 64)
        }
    }
}
