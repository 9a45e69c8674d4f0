import Testing
import UDI

/// Carrier strings written from the agencies' published formats: GS1 General Specifications
/// (AIs 01, 11, 17, 10, 21), ANSI/HIBC 2.x (primary, `$`/`$$`/`$$+` secondaries with their date
/// flags, `/S` `/14D` `/16D`, mod-43 check), ISBT 128 ST-001/ST-011 (DS 034, 001, 032, 004, 008, 035).
@Suite struct UDICarrierTests {
    @Test func gs1BracketedAndRaw() throws {
        let bracketed = try UDI.parse("(01)00884521050122(11)240115(17)271130(10)LOT-7A(21)SN0042", referenceYear: 2026)
        #expect(bracketed.agency == .gs1)
        #expect(bracketed.deviceIdentifier == "00884521050122")
        #expect(bracketed.lot == "LOT-7A")
        #expect(bracketed.serial == "SN0042")
        #expect(bracketed.manufactureDate?.description == "2024-01-15")
        #expect(bracketed.expiryDate?.description == "2027-11-30")
        let raw = try UDI.parse("]d2010088452105012211240115172711301" + "0LOT-7A\u{1D}21SN0042", referenceYear: 2026)
        #expect(raw == bracketed)
        #expect(bracketed.disagreement(deviceIdentifier: "884521050122", issuer: "http://hl7.org/fhir/NamingSystem/gs1") == nil)
        #expect(bracketed.disagreement(deviceIdentifier: "00884521050137", issuer: nil)?.contains("00884521050122") == true)
        #expect(bracketed.disagreement(deviceIdentifier: "00884521050122", issuer: "http://hl7.org/fhir/NamingSystem/hibcc")?.contains("issuer") == true)
    }

    @Test func gs1Refusals() {
        #expect(code("(01)00884521050121(21)1") == "gtin_check_digit")
        #expect(code("(17)271130(21)1") == "missing_di")
        #expect(code("(01)00884521050122(17)271330") == "bad_expiry")
    }

    @Test func hibccPrimaryOnly() throws {
        let udi = try UDI.parse("+A123BJC5D6E71G", referenceYear: 2026)
        #expect(udi.agency == .hibcc)
        #expect(udi.deviceIdentifier == "A123BJC5D6E71")
        #expect(udi.lot == nil && udi.serial == nil && udi.expiryDate == nil)
        #expect(udi.disagreement(deviceIdentifier: "+A123BJC5D6E71", issuer: "http://hl7.org/fhir/NamingSystem/hibcc") == nil)
    }

    @Test func hibccSecondaries() throws {
        let lotWithDate = try UDI.parse("+A123BJC5D6E71/$$3261231LOT42H", referenceYear: 2026)
        #expect(lotWithDate.expiryDate?.description == "2026-12-31")
        #expect(lotWithDate.lot == "LOT42")
        let serialWithMonth = try UDI.parse("+A123BJC5D6E71/$$+0326SN9V", referenceYear: 2026)
        #expect(serialWithMonth.expiryDate?.description == "2026-03")
        #expect(serialWithMonth.serial == "SN9")
        #expect(serialWithMonth.expiryDate?.agrees(with: "2026-03-31") == true)
        let supplemental = try UDI.parse("+A123BJC5D6E71/$LOT7/S1234/14D20271130/16D20240115G", referenceYear: 2026)
        #expect(supplemental.lot == "LOT7")
        #expect(supplemental.serial == "1234")
        #expect(supplemental.expiryDate?.description == "2027-11-30")
        #expect(supplemental.manufactureDate?.description == "2024-01-15")
        let quantity = try UDI.parse("+A123BJC5D6E71/$$8053261231LOTQ7", referenceYear: 2026)
        #expect(quantity.expiryDate?.description == "2026-12-31")
        #expect(quantity.lot == "LOTQ")
        let julian = try UDI.parse("+A123BJC5D6E71/25032L9C", referenceYear: 2026)
        #expect(julian.expiryDate?.description == "2025-02-01")
        #expect(julian.lot == "L9")
        let long = try UDI.parse("+H123PARTNO1234567890120/$$420020216LOT123456789012345/SXYZ456789012345678/16D20130202H", referenceYear: 2026)
        #expect(long.deviceIdentifier == "H123PARTNO1234567890120")
        #expect(long.expiryDate?.description == "2020-02-02")
        #expect(long.lot == "LOT123456789012345")
        #expect(long.serial == "XYZ456789012345678")
        #expect(long.manufactureDate?.description == "2013-02-02")
    }

    @Test func hibccRefusals() {
        #expect(code("+A123BJC5D6E71H") == "bad_check_character")
        #expect(code("+A123BJC5D6E71/$$3261331LOT42") == "bad_check_character")
        #expect(code("+$$3261231LOT422") == "missing_di")
        #expect(code("+a123bjc5d6e71g") == "malformed_udi")
        #expect(code("+A123BJC5D6E71/XYZT") == "malformed_udi")
    }

    @Test func isbt128FullUDI() throws {
        let udi = try UDI.parse("=/A9999XYZ100T0944=,000025=A99971312345600=>014032=}013032&,1000000000000XYZ123", referenceYear: 2026)
        #expect(udi.agency == .iccbba)
        #expect(udi.deviceIdentifier == "A9999XYZ100T0944")
        #expect(udi.serial == "000025")
        #expect(udi.distinctIdentifier == "A999713123456")
        #expect(udi.expiryDate?.description == "2014-02-01")
        #expect(udi.manufactureDate?.description == "2013-02-01")
        #expect(udi.lot == "000000000000XYZ123")
        #expect(udi.disagreement(deviceIdentifier: "A9999XYZ100T0944", issuer: "http://hl7.org/fhir/NamingSystem/iccbba-other") == nil)
        #expect(udi.disagreement(deviceIdentifier: "A9999XYZ100T0945", issuer: nil) != nil)
    }

    @Test func isbt128Refusals() {
        #expect(code("=,000025") == "missing_di")
        #expect(code("=/A9999XYZ100") == "malformed_udi")
        #expect(code("=/A9999XYZ100T0944=>014400") == "bad_expiry")
        #expect(code("=/A9999XYZ100T0944=%123") == "malformed_udi")
    }

    @Test func unknownAgency() {
        #expect(code("*A123*") == "unknown_udi_format")
        #expect(code("") == "unknown_udi_format")
    }

    private func code(_ text: String) -> String? {
        do {
            _ = try UDI.parse(text, referenceYear: 2026)
            return nil
        } catch {
            return error.code
        }
    }
}
