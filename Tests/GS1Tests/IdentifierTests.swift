import GS1
import Testing

@Suite struct IdentifierTests {
    static let gtin = "04012345111118"
    static let forms = [
        "urn:epc:id:sgtin:4012345.011111.ABC123",
        "https://id.gs1.org/01/04012345111118/21/ABC123",
        "https://pharma.example.com/dl/01/04012345111118/10/L1/21/ABC123?17=270531",
        "http://example.org/01/4012345111118/21/ABC123",
        "(01)04012345111118(17)270531(10)L1(21)ABC123",
        "]d20104012345111118172705311" + "0L1\u{1D}21ABC123",
        "0104012345111118" + "21ABC123\u{1D}" + "17270531" + "10L1",
        "010401234511111817270531" + "10L1<GS>21ABC123",
    ]

    @Test(arguments: forms)
    func everyFormOfOnePackResolvesToTheSameKey(form: String) throws {
        let pack = try ScannedPack(form, referenceYear: 2026)
        #expect(pack.key.gtin.digits == Self.gtin)
        #expect(pack.key.serial == "ABC123")
        #expect(pack.key.digitalLink == "https://id.gs1.org/01/04012345111118/21/ABC123")
        #expect(pack.key.sgtinURN(companyPrefixLength: 7) == "urn:epc:id:sgtin:4012345.011111.ABC123")
        if form.contains("17") && !form.hasPrefix("urn") && !form.hasSuffix("/21/ABC123") {
            #expect(pack.expiry?.description == "2027-05-31", "\(form)")
            #expect(pack.lot == "L1", "\(form)")
        }
    }

    @Test func checkDigitsAreChecked() {
        #expect(GS1CheckDigit.isValid("04012345111118"))
        #expect(GS1CheckDigit.isValid("4012345000115"))          // GLN of the CBV examples
        #expect(GS1CheckDigit.isValid("040123450000003338"))     // SSCC
        #expect(!GS1CheckDigit.isValid("04012345111119"))
        #expect(throws: GS1IdentifierError.self) { try GTIN("04012345111119") }
        let error = #expect(throws: GS1IdentifierError.self) { try ScannedPack("(01)04012345111119(21)A", referenceYear: 2026) }
        #expect(error?.code == "gtin_check_digit")
        #expect(error?.message.contains("expected 8") == true)
    }

    @Test(arguments: [
        ("270200", "2027-02-28"), ("280200", "2028-02-29"), ("261231", "2026-12-31"),
        ("991231", "1999-12-31"),   // more than 50 years ahead of 2026: the previous century
        ("760101", "2076-01-01"),
    ])
    func expiryDatesFollowGS1(text: String, date: String) throws {
        #expect(try GS1Date(yymmdd: text, referenceYear: 2026).description == date)
    }

    @Test(arguments: ["271301", "270230", "2702", "27A101", "270431"])
    func impossibleExpiryDatesAreRefused(text: String) {
        let error = #expect(throws: GS1IdentifierError.self) { try ScannedPack("(01)04012345111118(17)\(text)(21)A1", referenceYear: 2026) }
        #expect(error?.code == "bad_expiry" || error?.code == "malformed", "\(text)")
    }

    @Test func aDroppedSeparatorIsNamedNotGuessed() throws {
        // The separator after the lot is missing: "L121ABC123" could be lot L1 then serial ABC123.
        let missing = #expect(throws: GS1IdentifierError.self) { try ScannedPack("0104012345111118" + "17270531" + "10L121ABC123", referenceYear: 2026) }
        #expect(missing?.code == "cannot_split")
        #expect(missing?.message.contains("(10)") == true)
        #expect(missing?.message.contains("(21)") == true)
        // Past the lot's 20 characters, the field cannot be split either.
        let long = #expect(throws: GS1IdentifierError.self) { try ElementString("0104012345111118" + "10" + String(repeating: "A", count: 21) + "21X", referenceYear: 2026) }
        #expect(long?.code == "cannot_split")
        // Honest serials at the end stay what they are.
        #expect(try ScannedPack("0104012345111118" + "21" + "1234567890", referenceYear: 2026).key.serial == "1234567890")
        #expect(try ScannedPack("0104012345111118" + "21" + "12AB9012", referenceYear: 2026).key.serial == "12AB9012")
    }

    @Test(arguments: [
        ("", "malformed"), ("urn:epc:id:sscc:4012345.0000000333", "not_a_pack"), ("(01)04012345111118", "not_a_pack"),
        ("https://example.com/not/a/link", "malformed"), ("(99", "malformed"), ("(01)04012345111118(21)A(21)B", "repeated_ai"),
        ("urn:epc:id:sgtin:4012345.11111.A", "malformed"), ("(01)04012345111118(21)" + String(repeating: "S", count: 21), "malformed"),
        ("(01)04012345111118(21)ab cd", "malformed"), ("0404", "unknown_ai"),
    ])
    func badIdentifiersSayWhy(text: String, code: String) {
        let error = #expect(throws: GS1IdentifierError.self) { try ScannedPack(text, referenceYear: 2026) }
        #expect(error?.code == code, "\(text)")
    }

    @Test func epcURNsBecomeCanonicalDigitalLinks() throws {
        #expect(EPCURN.digitalLink("urn:epc:id:sgln:4012345.00011.987") == "https://id.gs1.org/414/4012345000115/254/987")
        #expect(EPCURN.digitalLink("urn:epc:id:sgln:4012345.00011.0") == "https://id.gs1.org/414/4012345000115")
        #expect(EPCURN.digitalLink("urn:epc:id:sscc:4012345.0000000333") == "https://id.gs1.org/00/040123450000003338")
        #expect(EPCURN.digitalLink("urn:epc:id:sgtin:4012345.011111.A%2FB") == "https://id.gs1.org/01/04012345111118/21/A%2FB")
        #expect(EPCURN.digitalLink("urn:epc:class:lgtin:4012345.011111.L1") == "https://id.gs1.org/01/04012345111118/10/L1")
        #expect(EPCURN.digitalLink("urn:epc:id:giai:4000001.111") == "https://id.gs1.org/8004/4000001111")
        #expect(EPCURN.digitalLink("urn:epc:id:sgtin:4012345.011111") == nil)
        #expect(EPCURN.sscc("urn:epc:id:sscc:4012345.0000000333")?.digits == "040123450000003338")
        #expect(try EPCURN.packKey(sgtin: "urn:epc:id:sgtin:4012345.011111.A%2FB").serial == "A/B")
    }
}
