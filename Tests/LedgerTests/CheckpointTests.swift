import Crypto
import Foundation
import Ledger
import Testing
import TestSupport

@Suite struct CheckpointTests {
    static func vectors() throws -> [[String: Any]] {
        try SharedFiles.json("testvectors/merkle/c2sp-signed-note.json")["vectors"] as? [[String: Any]] ?? []
    }

    @Test func goSumdbNoteVectors() throws {
        let vectors = try Self.vectors()
        #expect(vectors.count == 3)
        for vector in vectors {
            let verifier = try NoteVerifier(vector["verifier_key"] as! String)
            #expect(verifier.text == vector["verifier_key"] as? String)
            let note = vector["note"] as! String
            let opened = Result { () throws(SignedNote.NoteError) in try SignedNote.open(note, verifiers: [verifier]) }
            if vector["valid"] as? Bool == true {
                let (text, signers) = try opened.get()
                #expect(signers == [verifier.name])
                #expect(text == "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n")
            } else {
                #expect(throws: SignedNote.NoteError.self) { try opened.get() }
            }
        }
    }

    @Test func weSignExactlyAsGoDoes() throws {
        let vector = try #require(try Self.vectors().first { $0["private_key"] != nil })
        // PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>
        let fields = (vector["private_key"] as! String).split(separator: "+", maxSplits: 4)
        let seed = try #require(Base64.decode(fields[4]))
        let key = try Ed25519PrivateKey(seed: Array(seed.dropFirst()))
        let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
        #expect(try SignedNote.sign(text: text, name: String(fields[2]), key: key) == vector["note"] as? String)
        #expect(NoteVerifier(name: String(fields[2]), publicKey: key.publicKey).text == vector["verifier_key"] as? String)
    }

    @Test func checkpointsRoundTripAndRefuseTampering() throws {
        let key = try Ed25519PrivateKey()
        let verifier = NoteVerifier(name: "example.org/log", publicKey: key.publicKey)
        let checkpoint = Checkpoint(origin: "example.org/log", size: 1234, rootHash: SHA256.digest(Array("root".utf8)))
        let note = try SignedNote.sign(text: checkpoint.text, name: "example.org/log", key: key)
        #expect(try Checkpoint.open(note, origin: "example.org/log", verifiers: [verifier]) == checkpoint)
        #expect(throws: SignedNote.NoteError.self) { try Checkpoint.open(note, origin: "other/log", verifiers: [verifier]) }
        let tampered = note.replacingOccurrences(of: "\n1234\n", with: "\n1235\n")
        #expect(throws: SignedNote.NoteError.self) { try Checkpoint.open(tampered, origin: "example.org/log", verifiers: [verifier]) }
        let stranger = NoteVerifier(name: "example.org/log", publicKey: try Ed25519PrivateKey().publicKey)
        #expect(throws: SignedNote.NoteError.self) { try Checkpoint.open(note, origin: "example.org/log", verifiers: [stranger]) }
        for bad in ["", "x\n", "o\n-1\nAAAA\n", "o\n01\n" + Base64.encode(SHA256.digest([])) + "\n", "o\n1\nAAAA\n"] {
            #expect(throws: SignedNote.NoteError.self) { try Checkpoint(text: bad) }
        }
    }
}
