import GS1
import Testing

/// Vectors: the first is the Tag Data Standard's own SGTIN-96 example; the others were encoded with
/// PyPI `epcpy` 0.1.8, an independent implementation of the standard.
@Suite struct EPCTagTests {
    @Test(arguments: [
        ("3074257BF7194E4000001A85", "urn:epc:tag:sgtin-96:3.0614141.812345.6789", "urn:epc:id:sgtin:0614141.812345.6789"),
        ("3034F4E4E40AD9C0000003DB", "urn:epc:tag:sgtin-96:1.4012345.011111.987", "urn:epc:id:sgtin:4012345.011111.987"),
        ("30003932449F003FFFFFFFFF", "urn:epc:tag:sgtin-96:0.061414123456.0.274877906943", "urn:epc:id:sgtin:061414123456.0.274877906943"),
        ("3474257BF40000000000162E", "urn:epc:tag:giai-96:3.0614141.5678", "urn:epc:id:giai:0614141.5678"),
        ("3434F424040000000000006F", "urn:epc:tag:giai-96:1.4000001.111", "urn:epc:id:giai:4000001.111"),
        ("34183BF9BFFFFFFFFFFFFFFF", "urn:epc:tag:giai-96:0.061414.4611686018427387903", "urn:epc:id:giai:061414.4611686018427387903"),
    ])
    func decodesTheTagToItsURN(hex: String, tag: String, pure: String) throws {
        let decoded = try EPCTag(hex: hex)
        #expect(decoded.tagURI == tag)
        #expect(decoded.pureIdentity == pure)
        #expect(try EPCTag(hex: hex.lowercased()) == decoded)
    }

    @Test func aPackTagNamesThePack() throws {
        let tag = try EPCTag(hex: "3034F4E4E40AD9C0000003DB")
        let key = try EPCURN.packKey(sgtin: tag.pureIdentity)
        #expect(key.gtin.digits == "04012345111118" && key.serial == "987")
    }

    @Test(arguments: [
        ("E2801160600002054CC2096F", "unsupported_header"),   // a TID-like value, not an EPC header we decode
        ("3674257BF7194E4000001A85", "unsupported_header"),   // SGTIN-198
        ("3074257BF7194E4000001A", "malformed_tag"),
        ("307X257BF7194E4000001A85", "malformed_tag"),
        ("307C257BF7194E4000001A85", "malformed_tag"),        // partition 7 is reserved
        ("", "malformed_tag"),
    ])
    func refusesWhatItDoesNotDecode(hex: String, code: String) {
        let error = #expect(throws: GS1IdentifierError.self) { try EPCTag(hex: hex) }
        #expect(error?.code == code, "\(hex)")
    }
}
