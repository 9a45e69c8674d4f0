/// A pack as someone scanned or typed it: the key, and the lot and expiry when the form carries them.
public struct ScannedPack: Equatable, Sendable {
    public let key: PackKey
    public let lot: String?
    public let expiry: GS1Date?

    /// Reads an SGTIN EPC URN, a GS1 Digital Link URI (any host) or a GS1 element string
    /// (human-readable or raw with group separators).
    public init(_ text: String, referenceYear: Int) throws(GS1IdentifierError) {
        let trimmed = text.trimmingSpaces
        if trimmed.hasPrefix("urn:epc:id:sgtin:") {
            key = try EPCURN.packKey(sgtin: trimmed)
            lot = nil
            expiry = nil
            return
        }
        if trimmed.hasPrefix("urn:") {
            throw GS1IdentifierError("not_a_pack", "only SGTIN URNs name packs; \(trimmed.prefix(16))… does not")
        }
        let values: (String) -> String?
        if trimmed.hasPrefix("http://") || trimmed.hasPrefix("https://") {
            guard let link = DigitalLink(trimmed) else {
                throw GS1IdentifierError("malformed", "the URI is not a GS1 Digital Link with a valid GS1 key")
            }
            values = link.value(of:)
        } else {
            let element = try ElementString(trimmed, referenceYear: referenceYear)
            values = element.value(of:)
        }
        guard let gtin = values("01") else { throw GS1IdentifierError("not_a_pack", "no GTIN (01) in the identifier") }
        guard let serial = values("21") else { throw GS1IdentifierError("not_a_pack", "no serial number (21) in the identifier") }
        key = try PackKey(gtin: try GTIN(gtin), serial: serial)
        lot = values("10")
        expiry = try values("17").map { text throws(GS1IdentifierError) in try GS1Date(yymmdd: text, referenceYear: referenceYear, field: "(17) expiry") }
    }
}
