import Crypto
import FoundationEssentials
import Ledger

/// `verify --url`: what a Certificate Transparency monitor or witness does, against our API. Fetches
/// the latest checkpoint, checks its signature with the pinned key, proves it consistent with the
/// checkpoint trusted from the last run, optionally downloads every entry and recomputes the root,
/// and then trusts the new checkpoint.
struct LedgerMonitor {
    let client: HTTPClient
    let key: Ed25519PublicKey
    let trustedHeadPath: String?
    let full: Bool

    struct Outcome: Encodable {
        let origin: String
        let treeSize: Int64
        let previousSize: Int64?
        let entriesChecked: Int64?
    }

    func run() throws -> Outcome {
        let note = try text(client.get("/v1/ledger/checkpoint"), what: "the checkpoint")
        let origin = String(note.prefix { $0 != "\n" })
        let head: Checkpoint
        do {
            head = try Checkpoint.open(note, origin: origin, verifiers: [NoteVerifier(name: origin, publicKey: key)])
        } catch {
            throw CLIError("the server's checkpoint is not signed by the pinned key: \(error)")
        }
        var previousSize: Int64?
        if let trustedHeadPath, let saved = FileManager.default.contents(atPath: trustedHeadPath) {
            let old: Checkpoint
            do {
                old = try Checkpoint.open(String(decoding: saved, as: UTF8.self), origin: origin, verifiers: [NoteVerifier(name: origin, publicKey: key)])
            } catch {
                throw CLIError("the trusted head in '\(trustedHeadPath)' does not verify: \(error)")
            }
            guard old.size <= head.size else {
                throw CLIError("the log was rolled back from \(old.size) to \(head.size) entries since the trusted head: "
                               + "the first missing sequence number is \(head.size)")
            }
            if old.size == head.size {
                guard old.rootHash == head.rootHash else { throw CLIError("the log has another root at the same size \(head.size): history was rewritten") }
            } else if old.size > 0 {
                let reply = try json(ConsistencyReply.self, client.get("/v1/ledger/proofs/consistency?from=\(old.size)&to=\(head.size)"), what: "the consistency proof")
                let proof = reply.proof.compactMap { Base64.decode($0) }
                do {
                    try ProofVerifier.verifyConsistency(oldSize: old.size, newSize: head.size, oldRoot: old.rootHash, newRoot: head.rootHash, proof: proof)
                } catch {
                    throw CLIError("the log does not extend the trusted head (size \(old.size)): \(error)")
                }
            }
            previousSize = old.size
        }
        var checked: Int64?
        if full { checked = try recomputeRoot(head) }
        if let trustedHeadPath {
            guard FileManager.default.createFile(atPath: trustedHeadPath, contents: Data(note.utf8)) else {
                throw CLIError("cannot save the new trusted head to '\(trustedHeadPath)'")
            }
        }
        return Outcome(origin: origin, treeSize: head.size, previousSize: previousSize, entriesChecked: checked)
    }

    /// Downloads every entry up to the head and checks the root they make.
    private func recomputeRoot(_ head: Checkpoint) throws -> Int64 {
        var frontier = MerkleFrontier()
        while frontier.size < head.size {
            let reply = try json(EntriesReply.self, client.get("/v1/ledger/entries?from=\(frontier.size)&to=\(head.size)"), what: "entries")
            guard !reply.items.isEmpty else { throw CLIError("the server returned no entries from \(frontier.size)") }
            for item in reply.items {
                guard item.seq == frontier.size else { throw CLIError("entry \(frontier.size) is missing or out of order") }
                frontier.append(leafHash: MerkleHash.leaf(Array(item.entry.utf8)))
            }
        }
        guard frontier.root == head.rootHash else { throw CLIError("the downloaded entries do not make the signed root") }
        return frontier.size
    }

    private func text(_ reply: HTTPClient.Reply, what: String) throws -> String {
        guard reply.status == 200 else { throw CLIError("fetching \(what) answered HTTP \(reply.status)") }
        return String(decoding: reply.body, as: UTF8.self)
    }

    private func json<T: Decodable>(_ type: T.Type, _ reply: HTTPClient.Reply, what: String) throws -> T {
        guard reply.status == 200, let value = try? JSONDecoder().decode(T.self, from: Data(reply.body)) else {
            throw CLIError("fetching \(what) answered HTTP \(reply.status)")
        }
        return value
    }

    private struct ConsistencyReply: Decodable {
        let proof: [String]
    }

    private struct EntriesReply: Decodable {
        struct Item: Decodable {
            let seq: Int64
            let entry: String
        }

        let items: [Item]
    }
}
