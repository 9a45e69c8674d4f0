import Crypto
import FoundationEssentials
import HTTP
import Ledger
import Postgres

/// `/v1/ledger/...`: heads, checkpoints, keys, entries, proofs, receipts, and anchoring.
enum LedgerRoutes {
    static func register(in api: inout APIRouteBuilder, ledger: LedgerService) {
        let origin = ledger.signer.origin
        let read: Action = .ledgerRead
        let publicRead = ledger.settings.publicRead

        api.on(.get, "/v1/ledger/head", read, publicWhen: publicRead) { _ in
            try JSONBody.response(.ok, HeadBody(origin: origin, head: try await ledger.signedHead()))
        }

        api.on(.get, "/v1/ledger/checkpoint", read, publicWhen: publicRead) { _ in
            let head = try await ledger.signedHead()
            return Response(status: .ok, headers: HTTPHeaders([("Content-Type", "text/plain; charset=utf-8")]), body: Array(head.checkpoint.utf8))
        }

        api.on(.get, "/v1/ledger/keys", read, publicWhen: publicRead) { _ in
            let keys = try await ledger.keys().map { key in
                KeyBody(
                    keyId: key.keyId, name: key.name, publicKey: Base64.encode(key.publicKey),
                    verifierKey: (try? Ed25519PublicKey(rawRepresentation: key.publicKey)).map { NoteVerifier(name: key.name, publicKey: $0).text } ?? "",
                    createdAt: Timestamp.format(key.createdAt))
            }
            return try JSONBody.response(.ok, Page(items: keys, next: nil))
        }

        api.on(.get, "/v1/ledger/entries", read, publicWhen: publicRead) { request in
            let query = try request.query()
            let page = try await ledger.entries(from: try query.nonNegativeInteger("from") ?? 0, to: try query.nonNegativeInteger("to"))
            return try JSONBody.response(.ok, Page(items: page.entries.map(EntryBody.init), next: page.next.map(String.init)))
        }

        api.on(.get, "/v1/ledger/entries/{seq}", read, publicWhen: publicRead) { request in
            try JSONBody.response(.ok, EntryBody(try await ledger.entry(seq: try request.parameters.require("seq", as: Int64.self))))
        }

        api.on(.get, "/v1/ledger/proofs/inclusion", read, publicWhen: publicRead) { request in
            let query = try request.query()
            guard let seq = try query.nonNegativeInteger("seq") else { throw DomainError.invalid("'seq' must be a non-negative integer.") }
            let proof = try await ledger.inclusionProof(seq: seq, size: try query.nonNegativeInteger("size"))
            return try JSONBody.response(.ok, InclusionBody(
                seq: seq, treeSize: proof.head.treeSize, entry: String(decoding: proof.entry, as: UTF8.self),
                leafHash: Base64.encode(proof.leafHash), proof: proof.path.map(Base64.encode), checkpoint: proof.head.checkpoint))
        }

        api.on(.get, "/v1/ledger/proofs/consistency", read, publicWhen: publicRead) { request in
            let query = try request.query()
            guard let from = try query.nonNegativeInteger("from"), from >= 1 else { throw DomainError.invalid("'from' must be a tree size of at least 1.") }
            let proof = try await ledger.consistencyProof(from: from, to: try query.nonNegativeInteger("to"))
            return try JSONBody.response(.ok, ConsistencyBody(
                from: from, to: proof.head.treeSize, proof: proof.path.map(Base64.encode), fromCheckpoint: proof.fromHead?.checkpoint,
                toCheckpoint: proof.head.checkpoint))
        }

        api.on(.get, "/v1/ledger/receipts/{seq}", read, publicWhen: publicRead) { request in
            let seq = try request.parameters.require("seq", as: Int64.self)
            guard let receipt = try await ledger.receipt(seq: seq) else { throw DomainError.notFound("No entry with that sequence number yet.") }
            return try JSONBody.response(.ok, receipt)
        }

        api.on(.post, "/v1/ledger/anchors", .ledgerAnchor) { context in
            let body = try JSONBody.decode(AnchorRequest.self, from: context.request, fields: ["hash", "kind", "reference"])
            let anchored = try await ledger.anchor(hash: body.hash, kind: body.kind, reference: body.reference, context.call)
            return try JSONBody.response(.created, AnchorBody(
                id: anchored.id, hash: body.hash, kind: body.kind, reference: body.reference, seq: anchored.entry?.seq,
                leafHash: anchored.entry.map { Base64.encode($0.leafHash) }, status: anchored.entry == nil ? "queued" : "sequenced"))
        }
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
}

private struct AnchorBody: Encodable {
    let id: String
    let hash: String
    let kind: String
    let reference: String
    let seq: Int64?
    let leafHash: String?
    /// `sequenced` when the entry is in the log already, `queued` when it will be shortly.
    let status: String
}

/// Where a created object's entry sits in the log, as a create's 201 reports it.
struct LedgerRef: Encodable {
    let seq: Int64
    let leafHash: String

    init(_ entry: LedgerEntryRow) {
        seq = entry.seq
        leafHash = Base64.encode(entry.leafHash)
    }
}
