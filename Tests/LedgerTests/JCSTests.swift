import Crypto
import Foundation
import Ledger
import Testing
import TestSupport

@Suite struct JCSTests {
    static let cases = ["arrays", "french", "structures", "unicode", "values", "weird"]

    @Test(arguments: cases)
    func canonicalizesLikeTheReferenceImplementation(name: String) throws {
        let input = try SharedFiles.data("testvectors/jcs/input/\(name).json")
        let expected = try SharedFiles.data("testvectors/jcs/output/\(name).json")
        let hex = try String(contentsOf: SharedFiles.url("testvectors/jcs/outhex/\(name).txt"), encoding: .utf8)
        let canonical = try JCS.canonicalize(json: Array(input))
        #expect(canonical == Array(expected))
        #expect(Hex.encode(canonical) == hex.split(whereSeparator: \.isWhitespace).joined())
        // Canonical form is a fixed point.
        #expect(try JCS.canonicalize(json: canonical) == canonical)
    }

    @Test func numbersPrintAsECMAScriptDoes() throws {
        let text = try String(contentsOf: SharedFiles.url("testvectors/jcs/es6testfile-first10000.txt"), encoding: .utf8)
        var checked = 0
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ",")
            let bits = try #require(UInt64(fields[0], radix: 16))
            let value = Double(bitPattern: bits)
            #expect(ECMAScriptNumber.format(value) == String(fields[1]), "bits \(fields[0])")
            // And the printed number parses back to the same double through our parser.
            #expect(try JSONParser.parse(Array(fields[1].utf8)) == .number(value == 0 ? 0 : value))
            checked += 1
        }
        #expect(checked == 10_000)
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "-", "1e", "+1", "NaN", "Infinity", "1e400", "-1e400",
        "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"a\u{01}\"", "\"\\x\"", "{\"a\":1,\"a\":2}", "[1] 2", "tru", "nul",
        "{\"a\" 1}", "\"unterminated",
    ])
    func invalidDocumentsAreRefused(text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(text.utf8)) }
    }

    @Test func invalidUTF8AndDeepNestingAreRefused() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) }
        let deep = String(repeating: "[", count: 201) + String(repeating: "]", count: 201)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(deep.utf8)) }
        let fine = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect((try? JSONParser.parse(Array(fine.utf8))) != nil)
    }

    @Test func membersSortByUTF16WhereItDiffersFromByteOrder() throws {
        // U+FB33 (UTF-8 EF AC B3) against U+1F600 (F0 9F 98 80): bytes put U+FB33 first, UTF-16
        // (FB33 against the surrogate D83D) puts the emoji first. Equal prefixes too.
        let keys = ["\u{FB33}", "\u{1F600}", "a", "é", "\u{E000}", "ab", "\u{FB33}x", ""]
        let members = keys.shuffled().map { (key: $0, value: JSONValue.null) }
        let canonical = String(decoding: JCS.canonicalize(.object(members)), as: UTF8.self)
        let expected = keys.sorted { $0.utf16.lexicographicallyPrecedes($1.utf16) }
        #expect(canonical == "{" + expected.map { "\"\($0)\":null" }.joined(separator: ",") + "}")
        #expect(expected.firstIndex(of: "\u{1F600}")! < expected.firstIndex(of: "\u{FB33}")!)
    }

    @Test func documentHashIsSHA256OfTheCanonicalBytes() throws {
        let value = try JSONParser.parse(Array(#"{ "b": [1.0, 2e0], "a": "x" }"#.utf8))
        #expect(String(decoding: JCS.canonicalize(value), as: UTF8.self) == #"{"a":"x","b":[1,2]}"#)
        #expect(JCS.documentHash(value) == "sha256:" + SHA256.hexDigest(Array(#"{"a":"x","b":[1,2]}"#.utf8)))
    }
}

@Suite struct CanonicalScannerTests {
    @Test(arguments: JCSTests.cases)
    func agreesWithCanonicalizeOnTheVectors(name: String) throws {
        let input = Array(try SharedFiles.data("testvectors/jcs/input/\(name).json"))
        let output = Array(try SharedFiles.data("testvectors/jcs/output/\(name).json"))
        #expect(CanonicalScanner.isCanonical(output))
        #expect(CanonicalScanner.isCanonical(input) == (input == output))
    }

    @Test func agreesWithCanonicalizeOnMutatedDocuments() throws {
        let seeds = try JCSTests.cases.map { Array(try SharedFiles.data("testvectors/jcs/output/\($0).json")) }
            + [Array(#"{"a":[1,2.5,-0.001,1e+21,"\u001f\n"],"b":{"c":null,"d":true},"é":"x"}"#.utf8)]
        var checked = 0
        for seed in seeds {
            for _ in 0..<400 {
                var bytes = seed
                let position = Int.random(in: 0..<bytes.count)
                switch Int.random(in: 0..<3) {
                case 0: bytes[position] = UInt8.random(in: 0x20...0x7E)
                case 1: bytes.insert(Array(" ,:{}[]\"\\0-e.".utf8).randomElement()!, at: position)
                default: bytes.remove(at: position)
                }
                let reference = (try? JCS.canonicalize(json: bytes)).map { $0 == bytes } ?? false
                #expect(CanonicalScanner.isCanonical(bytes) == reference, "\(String(decoding: bytes, as: UTF8.self))")
                checked += 1
            }
        }
        #expect(checked > 2000)
    }

    @Test func returnsTheTopLevelScalars() {
        let entry = Array(#"{"actor":"org_1","hash":"sha256:ab","nested":{"x":1},"ref":"r","seq":42,"time":"t","type":"anchor"}"#.utf8)
        let members = CanonicalScanner.canonicalObjectMembers(entry)
        #expect(members?["seq"] == .number(42) && members?["type"] == .string("anchor") && members?["nested"] == nil)
        #expect(CanonicalScanner.canonicalObjectMembers(Array(#"{"b":1,"a":2}"#.utf8)) == nil)
        #expect(CanonicalScanner.canonicalObjectMembers(Array(#"[1]"#.utf8)) == nil)
        #expect(CanonicalScanner.canonicalObjectMembers(Array(#"{"a":1} "#.utf8)) == nil)
    }
}
