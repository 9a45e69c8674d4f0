@testable import CareLedger
import Crypto
import Foundation
import HTTP
import Ledger
import Postgres
import Testing

@Suite struct LedgerTests {
    private func anchor(_ api: APIHarness, key: String, _ index: Int) async -> APIHarness.Reply {
        let hash = "sha256:" + SHA256.hexDigest(Array("document \(index)".utf8))
        return await api.call(.post, "/v1/ledger/anchors", key: key, body: #"{"hash":"\#(hash)","kind":"discharge-summary","reference":"doc-\#(index)"}"#)
    }

    @Test func anchorsAreSequencedSignedAndProvable() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            let org = try await api.createOrg("General", "hospital")
            let key = try await api.issueKey(org, "hospital").apiKey
            var seqs: [Int64] = []
            for index in 0..<5 {
                let reply = await anchor(api, key: key, index)
                #expect(reply.status == 201 && reply["status"] == "sequenced", "\(reply.text)")
                seqs.append((reply.json["seq"] as? Int).map(Int64.init) ?? -1)
                #expect(reply["id"]?.hasPrefix("anc_") == true && reply["leafHash"] != nil)
            }
            #expect(seqs == seqs.sorted() && Set(seqs).count == 5)

            let publicKey = api.ledger.signer.key.publicKey
            let verifier = api.ledger.signer.verifier
            let head = await api.call(.get, "/v1/ledger/head", key: key)
            let size = try #require(head.json["treeSize"] as? Int)
            #expect(size >= 5)
            let checkpoint = try #require(head["checkpoint"])
            let opened = try Checkpoint.open(checkpoint, origin: "test.careledger/log", verifiers: [verifier])
            #expect(opened.size == Int64(size) && Base64.encode(opened.rootHash) == head["rootHash"])
            let text = await api.call(.get, "/v1/ledger/checkpoint", key: key)
            #expect(text.text == checkpoint && text.response.headers.first(name: "Content-Type")?.hasPrefix("text/plain") == true)

            // Every entry is canonical JSON without PHI, and its leaf hash is SHA-256(0x00 || entry).
            let entries = await api.call(.get, "/v1/ledger/entries?from=0&to=\(size)", key: key)
            #expect(entries.items.count == size)
            for item in entries.items {
                let entry = try #require(item["entry"] as? String)
                let value = try JSONParser.parse(Array(entry.utf8))
                #expect(JCS.canonicalize(value) == Array(entry.utf8))
                if case .object(let members) = value { #expect(members.map(\.key).sorted() == ["actor", "hash", "ref", "seq", "time", "type"]) }
                #expect(item["leafHash"] as? String == Base64.encode(MerkleHash.leaf(Array(entry.utf8))))
                #expect(!entry.contains("doc-"), "the organization's own reference stays out of the ledger")
            }

            for seq in seqs {
                let proof = await api.call(.get, "/v1/ledger/proofs/inclusion?seq=\(seq)&size=\(size)", key: key)
                #expect(proof.status == 200)
                try ProofVerifier.verifyInclusion(
                    leafHash: Base64.decode(proof["leafHash"] ?? "") ?? [], index: seq, size: Int64(size),
                    proof: (proof.json["proof"] as? [String] ?? []).map { Base64.decode($0) ?? [] }, root: opened.rootHash)
                let receipt = await api.call(.get, "/v1/ledger/receipts/\(seq)", key: key)
                let decoded = try JSONDecoder().decode(Receipt.self, from: Data(receipt.response.body))
                #expect(try decoded.verify(publicKey: publicKey)["ref"] != nil)
                var forged = decoded
                forged = Receipt(origin: forged.origin, keyId: forged.keyId, seq: forged.seq,
                                 entry: forged.entry.replacingOccurrences(of: "\"anchor\"", with: "\"anchox\""), leafHash: forged.leafHash,
                                 treeSize: forged.treeSize, inclusionProof: forged.inclusionProof, checkpoint: forged.checkpoint)
                #expect(throws: (any Error).self) { try forged.verify(publicKey: publicKey) }
                #expect(throws: (any Error).self) { try decoded.verify(publicKey: try Ed25519PrivateKey().publicKey) }
            }

            // Any earlier head is consistent with the one read above (the running ledger may have
            // grown since, which is why every proof here names its sizes).
            let keys = await api.call(.get, "/v1/ledger/keys", key: key)
            #expect(keys.items.first?["verifierKey"] as? String == verifier.text)
            let rows = try await api.pool.query("SELECT tree_size, checkpoint FROM ledger_heads WHERE tree_size > 0 AND tree_size <= \(Int64(size)) ORDER BY tree_size")
            for row in rows.all {
                let old = try row.decode("tree_size", as: Int64.self)
                let oldHead = try Checkpoint.open(try row.decode("checkpoint"), origin: "test.careledger/log", verifiers: [verifier])
                let reply = await api.call(.get, "/v1/ledger/proofs/consistency?from=\(old)&to=\(size)", key: key)
                #expect(reply.status == 200)
                try ProofVerifier.verifyConsistency(
                    oldSize: old, newSize: Int64(size), oldRoot: oldHead.rootHash, newRoot: opened.rootHash,
                    proof: (reply.json["proof"] as? [String] ?? []).map { Base64.decode($0) ?? [] })
            }
        }
    }

    @Test func concurrentWritersGetADenseSequenceThatVerifies() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            let org = try await api.createOrg("Busy", "pharmacy")
            let key = try await api.issueKey(org, "pharmacy").apiKey
            let statuses = await withTaskGroup(of: Int.self) { group in
                for index in 0..<64 { group.addTask { await anchor(api, key: key, index).status } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0 == 201 }, "\(statuses.sorted())")
            try await api.ledger.sequencer.sequenceBatch()
            let rows = try await api.pool.query("SELECT seq, leaf_hash, type FROM ledger_entries ORDER BY seq")
            let seqs = try rows.all.map { try $0.decode("seq", as: Int64.self) }
            // The sequencer also anchors audit batches as it goes (once a second), between the anchors.
            #expect(seqs == Array(0..<Int64(seqs.count)))
            #expect(try rows.all.filter { try $0.decode("type", as: String.self) == "anchor" }.count == 64)
            var frontier = MerkleFrontier()
            for row in rows.all { frontier.append(leafHash: try row.decode("leaf_hash", as: PostgresBytes.self).bytes) }
            let head = try #require(try await api.ledger.store.latestHead(on: api.pool))
            #expect(head.treeSize == Int64(seqs.count) && head.rootHash == frontier.root)
        }
    }

    @Test func badAnchorsAre400sAndTheLogTablesRefuseRewrites() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            let org = try await api.createOrg("General", "hospital")
            let key = try await api.issueKey(org, "hospital").apiKey
            for body in [#"{"hash":"sha256:abc","kind":"x","reference":"r"}"#, #"{"hash":"md5:00","kind":"x","reference":"r"}"#,
                         #"{"hash":"sha256:\#(String(repeating: "A", count: 64))","kind":"x","reference":"r"}"#,
                         #"{"hash":"sha256:\#(String(repeating: "a", count: 64))","kind":"Bad Kind","reference":"r"}"#,
                         #"{"hash":"sha256:\#(String(repeating: "a", count: 64))","kind":"x","reference":""}"#] {
                let reply = await api.call(.post, "/v1/ledger/anchors", key: key, body: body)
                #expect(reply.status == 400, "\(body)")
            }
            #expect(await anchor(api, key: key, 1).status == 201)
            #expect(await api.call(.post, "/v1/ledger/anchors", key: api.adminKey, body: "{}").status == 403)
            for statement in ["UPDATE ledger_entries SET type = 'x'", "DELETE FROM ledger_entries", "TRUNCATE ledger_nodes",
                              "UPDATE ledger_heads SET checkpoint = ''", "DELETE FROM ledger_keys", "UPDATE ledger_anchors SET hash = ''"] {
                await #expect(throws: PostgresError.self, "\(statement)") { try await api.pool.query(PostgresQuery(unsafeSQL: statement)) }
            }
            #expect(await api.call(.get, "/v1/ledger/proofs/inclusion?seq=999", key: key).status == 404)
            #expect(await api.call(.get, "/v1/ledger/proofs/inclusion?seq=0&size=12345", key: key).status == 404)
            #expect(await api.call(.get, "/v1/ledger/proofs/consistency?from=0", key: key).status == 400)
            #expect(await api.call(.get, "/v1/ledger/entries/999", key: key).status == 404)
        }
    }

    @Test func twoSequencersNeverForkTheLog() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            // A second instance's service on the same log: only one is elected, and even direct
            // batches from both interleave into one dense sequence.
            let other = try LedgerService.started(api.pool)
            let store = LedgerStore()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        for index in 0..<25 {
                            try await api.pool.withTransaction { transaction in
                                _ = try await store.enqueue(LedgerItem(type: "anchor", actor: "org_test", ref: "w\(writer)-\(index)", hash: "sha256:" + String(repeating: "0", count: 64)), on: transaction)
                            }
                        }
                    }
                }
                group.addTask { for _ in 0..<20 { try await other.sequencer.sequenceBatch() } }
                group.addTask { for _ in 0..<20 { try await api.ledger.sequencer.sequenceBatch() } }
                try await group.waitForAll()
            }
            try await api.ledger.sequencer.sequenceBatch()
            await other.stop()
            let rows = try await api.pool.query("SELECT seq, ref, type, leaf_hash FROM ledger_entries ORDER BY seq")
            // The running sequencer may add an audit.batch entry of its own between them.
            #expect(try rows.all.map { try $0.decode("seq", as: Int64.self) } == Array(0..<Int64(rows.count)))
            let refs = try rows.all.filter { try $0.decode("type", as: String.self) == "anchor" }.map { try $0.decode("ref", as: String.self) }
            #expect(refs.count == 200 && Set(refs).count == 200)
            var frontier = MerkleFrontier()
            for row in rows.all { frontier.append(leafHash: try row.decode("leaf_hash", as: PostgresBytes.self).bytes) }
            #expect(try await api.ledger.store.latestHead(on: api.pool)?.rootHash == frontier.root)
        }
    }
}

@Suite struct WakeSignalTests {
    /// A wait that ends early must not leave its timer behind to end the next wait at once (that
    /// bug made an idle server spin at full CPU).
    @Test func anEarlyWakeLeavesNoStaleSignal() async {
        let signal = WakeSignal()
        signal.signal()
        let clock = ContinuousClock()
        let first = clock.now
        await signal.wait(timeout: .seconds(10))
        #expect(clock.now - first < .seconds(5))
        let second = clock.now
        await signal.wait(timeout: .milliseconds(300))
        #expect(clock.now - second >= .milliseconds(250))
    }
}

@Suite struct LedgerServiceStartTests {
    /// A service that cannot listen for batches fails at once: it once ran on without its
    /// sequencer and waiter, every create then waiting out its sequencing wait.
    @Test func aListenerThatCannotBeMadeFailsTheService() throws {
        let pool = PostgresPool(configuration: .init(conninfo: "postgresql:///unused?host=/nonexistent"))
        let signer = try LedgerSigner(origin: "test.careledger/log", key: Ed25519PrivateKey())
        #expect(throws: PostgresError.self) {
            _ = try LedgerService(pool: pool, signer: signer, settings: LedgerService.Settings(), log: nil, channel: "Not A Channel")
        }
        #expect(throws: Never.self) { _ = try LedgerService(pool: pool, signer: signer) }
    }
}

