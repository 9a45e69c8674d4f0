import Crypto
import FoundationEssentials
import HTTP
import Ledger
import Postgres

/// `/v1/ledger/...`: heads, checkpoints, keys, entries, proofs, receipts, and anchoring.
enum LedgerRoutes {
    static let maximumPage: Int64 = 1000
    /// Entries a page holds when the caller names no `to`.
    static let defaultPage: Int64 = 100

    static func register(in api: inout APIRouteBuilder, ledger: LedgerService) {
        let store = ledger.store
        let pool = ledger.pool
        let origin = ledger.signer.origin
        let read: Action = .ledgerRead
        let publicRead = ledger.settings.publicRead

        api.on(.get, "/v1/ledger/head", read, publicWhen: publicRead) { _ in
            let head = try await latestHead(ledger)
            return try JSONBody.response(.ok, HeadBody(origin: origin, head: head))
        }

        api.on(.get, "/v1/ledger/checkpoint", read, publicWhen: publicRead) { _ in
            let head = try await latestHead(ledger)
            return Response(status: .ok, headers: HTTPHeaders([("Content-Type", "text/plain; charset=utf-8")]), body: Array(head.checkpoint.utf8))
        }

        api.on(.get, "/v1/ledger/keys", read, publicWhen: publicRead) { _ in
            let keys = try await store.keys(on: pool).map { key in
                KeyBody(
                    keyId: key.keyId, name: key.name, publicKey: Base64.encode(key.publicKey),
                    verifierKey: (try? Ed25519PublicKey(rawRepresentation: key.publicKey)).map { NoteVerifier(name: key.name, publicKey: $0).text } ?? "",
                    createdAt: Timestamp.format(key.createdAt))
            }
            return try JSONBody.response(.ok, Page(items: keys, next: nil))
        }

        api.on(.get, "/v1/ledger/entries", read, publicWhen: publicRead) { request in
            let query = try request.query()
            let size = try await latestHead(ledger).treeSize
            let from = try integer(query["from"], name: "from") ?? 0
            let requestedTo = try integer(query["to"], name: "to")
            let end = min(requestedTo ?? size, size)
            guard from <= end else { throw APIError.badRequest("'from' must not be past 'to' or the tree size (\(size)).") }
            // Differences, not sums: `from` may be anything up to Int64.max, and `from + page` would trap.
            let page = requestedTo == nil ? defaultPage : maximumPage
            let to = end - from <= page ? end : from + page
            let entries = try await store.entries(from: from, to: to, on: pool)
            let next = to < end ? String(to) : nil
            return try JSONBody.response(.ok, Page(items: entries.map(EntryBody.init), next: next))
        }

        api.on(.get, "/v1/ledger/entries/{seq}", read, publicWhen: publicRead) { request in
            let seq = try request.parameters.require("seq", as: Int64.self)
            guard seq >= 0, let entry = try await store.entry(seq: seq, on: pool) else {
                throw HTTPError.notFound("No entry with that sequence number yet.")
            }
            return try JSONBody.response(.ok, EntryBody(entry))
        }

        api.on(.get, "/v1/ledger/proofs/inclusion", read, publicWhen: publicRead) { request in
            let query = try request.query()
            guard let seqText = query["seq"], let seq = Int64(seqText), seq >= 0 else { throw APIError.badRequest("'seq' must be a non-negative integer.") }
            let head = try await signedHead(size: query["size"], ledger)
            guard seq < head.treeSize, let found = try await ledger.inclusion(seq: seq, size: head.treeSize) else {
                throw HTTPError.notFound("No entry \(seq) in the tree of size \(head.treeSize).")
            }
            return try JSONBody.response(.ok, InclusionBody(
                seq: seq, treeSize: head.treeSize, entry: String(decoding: found.entry, as: UTF8.self),
                leafHash: Base64.encode(found.leafHash), proof: found.proof.map(Base64.encode), checkpoint: head.checkpoint))
        }

        api.on(.get, "/v1/ledger/proofs/consistency", read, publicWhen: publicRead) { request in
            let query = try request.query()
            guard let fromText = query["from"], let from = Int64(fromText), from >= 1 else {
                throw APIError.badRequest("'from' must be a tree size of at least 1.")
            }
            let head = try await signedHead(size: query["to"], ledger)
            guard from <= head.treeSize else { throw APIError.badRequest("'from' must not exceed 'to' (\(head.treeSize)).") }
            let proof = try await ledger.proofHashes(try ProofShape.consistency(oldSize: from, newSize: head.treeSize), on: pool)
            let fromHead = try await store.head(size: from, on: pool)
            return try JSONBody.response(.ok, ConsistencyBody(
                from: from, to: head.treeSize, proof: proof.map(Base64.encode), fromCheckpoint: fromHead?.checkpoint, toCheckpoint: head.checkpoint))
        }

        api.on(.get, "/v1/ledger/receipts/{seq}", read, publicWhen: publicRead) { request in
            let seq = try request.parameters.require("seq", as: Int64.self)
            guard let receipt = try await ledger.receipt(seq: seq) else { throw HTTPError.notFound("No entry with that sequence number yet.") }
            return try JSONBody.response(.ok, receipt)
        }

        api.on(.post, "/v1/ledger/anchors", .ledgerAnchor) { context in
            let body = try JSONBody.decode(AnchorRequest.self, from: context.request, fields: ["hash", "kind", "reference"])
            try body.validate()
            let id = ResourceID.generate("anc")
            let queueId = try await pool.withTransaction { transaction in
                let queueId = try await ledger.enqueue(LedgerItem(type: "anchor", actor: context.caller.orgId, ref: id, hash: body.hash), on: transaction)
                try await store.createAnchor(
                    id: id, orgId: context.caller.orgId, kind: body.kind, reference: body.reference, hash: body.hash, queueId: queueId, on: transaction)
                return queueId
            }
            let entry = await ledger.sequencedEntry(queueId: queueId)
            return try JSONBody.response(.created, AnchorBody(
                id: id, hash: body.hash, kind: body.kind, reference: body.reference, seq: entry.map { String($0.seq) },
                leafHash: entry.map { Base64.encode($0.leafHash) }, status: entry == nil ? "queued" : "sequenced"))
        }
    }

    private static func latestHead(_ ledger: LedgerService) async throws -> LedgerHead {
        guard let head = try await ledger.latestHead() else {
            throw HTTPError(status: .serviceUnavailable, code: "unavailable", message: "The ledger has no signed head yet; retry shortly.",
                            headers: HTTPHeaders([("Retry-After", "1")]))
        }
        return head
    }

    /// The signed head of the given size (which must have one), or the latest.
    private static func signedHead(size text: String?, _ ledger: LedgerService) async throws -> LedgerHead {
        guard let text else { return try await latestHead(ledger) }
        guard let size = Int64(text), size >= 1 else { throw APIError.badRequest("A tree size must be a positive integer.") }
        guard let head = try await ledger.store.head(size: size, on: ledger.pool) else {
            throw HTTPError.notFound("No signed tree head of size \(size); use the size of a published checkpoint.")
        }
        return head
    }

    private static func integer(_ text: String?, name: String) throws(HTTPError) -> Int64? {
        guard let text else { return nil }
        guard let number = Int64(text), number >= 0 else { throw APIError.badRequest("'\(name)' must be a non-negative integer.") }
        return number
    }
}

private struct HeadBody: Encodable {
    let origin: String
    let treeSize: Int64
    let rootHash: String
    let keyId: String
    let signedAt: String
    let checkpoint: String

    init(origin: String, head: LedgerHead) {
        self.origin = origin
        treeSize = head.treeSize
        rootHash = Base64.encode(head.rootHash)
        keyId = head.keyId
        signedAt = Timestamp.format(head.signedAt)
        checkpoint = head.checkpoint
    }
}

private struct KeyBody: Encodable {
    let keyId: String
    let name: String
    let publicKey: String
    let verifierKey: String
    let createdAt: String
}

private struct EntryBody: Encodable {
    let seq: Int64
    /// The canonical JSON exactly as hashed: SHA-256(0x00 || UTF-8 bytes of this string) is the leaf hash.
    let entry: String
    let leafHash: String

    init(_ row: LedgerEntryRow) {
        seq = row.seq
        entry = String(decoding: row.entry, as: UTF8.self)
        leafHash = Base64.encode(row.leafHash)
    }
}

private struct InclusionBody: Encodable {
    let seq: Int64
    let treeSize: Int64
    let entry: String
    let leafHash: String
    let proof: [String]
    let checkpoint: String
}

private struct ConsistencyBody: Encodable {
    let from: Int64
    let to: Int64
    let proof: [String]
    let fromCheckpoint: String?
    let toCheckpoint: String
}

private struct AnchorRequest: Decodable {
    let hash: String
    let kind: String
    let reference: String

    func validate() throws(HTTPError) {
        guard DocumentHash.isValid(hash) else { throw APIError.badRequest("'hash' must be sha256: followed by 64 lowercase hex digits.") }
        guard (1...64).contains(kind.utf8.count), kind.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D || $0 == 0x5F }) else {
            throw APIError.badRequest("'kind' must be 1-64 characters of a-z 0-9 . - _")
        }
        _ = try IdentityRoutes.validName(reference, field: "reference", required: true)
    }
}

private struct AnchorBody: Encodable {
    let id: String
    let hash: String
    let kind: String
    let reference: String
    let seq: String?
    let leafHash: String?
    /// `sequenced` when the entry is in the log already, `queued` when it will be shortly.
    let status: String
}

/// Document hashes as CareLedger writes them.
enum DocumentHash {
    static func isValid(_ text: String) -> Bool {
        text.hasPrefix("sha256:") && text.utf8.count == 71
            && text.utf8.dropFirst(7).allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }
}

/// Where a created object's entry sits in the log, as a create's 201 reports it.
struct LedgerRef: Encodable {
    let seq: String
    let leafHash: String

    init(_ entry: LedgerEntryRow) {
        seq = String(entry.seq)
        leafHash = Base64.encode(entry.leafHash)
    }
}
