/// EPC URNs of the GS1 Tag Data Standard (2.x, section 6) and their GS1 Digital Link equivalents
/// (TDS section 7 and GS1 Digital Link URI syntax 1.2, section 4.11).
public enum EPCURN {
    /// The canonical Digital Link URI of an `urn:epc:id:`, `urn:epc:class:` or `urn:epc:idpat:` URN,
    /// or nil when the text is not one of the schemes GS1 keys map to.
    public static func digitalLink(_ urn: String) -> String? {
        let idPrefix = "urn:epc:id:", classPrefix = "urn:epc:class:", patternPrefix = "urn:epc:idpat:"
        if urn.hasPrefix(idPrefix) { return instance(String(urn.dropFirst(idPrefix.count))) }
        if urn.hasPrefix(classPrefix) { return epcClass(String(urn.dropFirst(classPrefix.count))) }
        if urn.hasPrefix(patternPrefix) { return pattern(String(urn.dropFirst(patternPrefix.count))) }
        return nil
    }

    /// The pack an SGTIN URN names.
    public static func packKey(sgtin urn: String) throws(GS1IdentifierError) -> PackKey {
        let prefix = "urn:epc:id:sgtin:"
        guard urn.hasPrefix(prefix) else { throw GS1IdentifierError("malformed", "not an SGTIN URN") }
        let parts = urn.dropFirst(prefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let gtin13 = gtinBody(companyPrefix: parts[0], itemReference: parts[1]),
              let full = GS1CheckDigit.appended(to: gtin13), let serial = unescape(parts[2]) else {
            throw GS1IdentifierError("malformed", "an SGTIN URN is urn:epc:id:sgtin:{company prefix}.{indicator and item reference}.{serial}, 13 digits before the serial")
        }
        return try PackKey(gtin: try GTIN(full), serial: serial)
    }

    /// The SSCC an SSCC URN names.
    public static func sscc(_ urn: String) -> SSCC? {
        let prefix = "urn:epc:id:sscc:"
        guard urn.hasPrefix(prefix) else { return nil }
        let parts = urn.dropFirst(prefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let first = parts[1].first, let digits = GS1CheckDigit.appended(to: String(first) + parts[0] + parts[1].dropFirst()) else { return nil }
        return try? SSCC(digits)
    }

    private static func instance(_ body: String) -> String? {
        guard let colon = body.firstIndex(of: ":") else { return nil }
        let scheme = body[..<colon]
        let parts = body[body.index(after: colon)...].split(separator: ".", omittingEmptySubsequences: false)
        func digits(_ count: Int) -> Bool { parts.count == count && parts.prefix(count - 1).allSatisfy(GS1CheckDigit.allDigits) }
        switch scheme {
        case "sgtin":
            guard parts.count == 3, let gtin = gtin14(parts[0], parts[1]), let serial = reencode(parts[2]) else { return nil }
            return "https://id.gs1.org/01/\(gtin)/21/\(serial)"
        case "sscc":
            guard digits(2), GS1CheckDigit.allDigits(parts[1]), let first = parts[1].first,
                  let key = keyed(String(first) + parts[0] + parts[1].dropFirst(), length: 17) else { return nil }
            return "https://id.gs1.org/00/\(key)"
        case "sgln":
            guard parts.count == 3, let gln = keyed(String(parts[0] + parts[1]), length: 12), let ext = reencode(parts[2]) else { return nil }
            return "https://id.gs1.org/414/\(gln)" + (ext == "0" ? "" : "/254/\(ext)")
        case "pgln":
            guard parts.count == 2, let gln = keyed(String(parts[0] + parts[1]), length: 12) else { return nil }
            return "https://id.gs1.org/417/\(gln)"
        case "grai":
            guard parts.count == 3, let grai = keyed(String(parts[0] + parts[1]), length: 12), let serial = reencode(parts[2]) else { return nil }
            return "https://id.gs1.org/8003/0\(grai)\(serial)"
        case "giai":
            guard parts.count == 2, GS1CheckDigit.allDigits(parts[0]), let asset = reencode(parts[1]) else { return nil }
            return "https://id.gs1.org/8004/\(parts[0])\(asset)"
        case "gsrn", "gsrnp":
            guard parts.count == 2, let key = keyed(String(parts[0] + parts[1]), length: 17) else { return nil }
            return "https://id.gs1.org/\(scheme == "gsrn" ? "8018" : "8017")/\(key)"
        case "gdti", "sgcn":
            guard parts.count == 3, let key = keyed(String(parts[0] + parts[1]), length: 12), let serial = reencode(parts[2]) else { return nil }
            return "https://id.gs1.org/\(scheme == "gdti" ? "253" : "255")/\(key)\(serial)"
        case "cpi":
            guard parts.count == 3, GS1CheckDigit.allDigits(parts[0]), let reference = reencode(parts[1]), let serial = reencode(parts[2]) else { return nil }
            return "https://id.gs1.org/8010/\(parts[0])\(reference)/8011/\(serial)"
        case "ginc":
            guard parts.count == 2, GS1CheckDigit.allDigits(parts[0]), let reference = reencode(parts[1]) else { return nil }
            return "https://id.gs1.org/401/\(parts[0])\(reference)"
        case "gsin":
            guard parts.count == 2, let key = keyed(String(parts[0] + parts[1]), length: 16) else { return nil }
            return "https://id.gs1.org/402/\(key)"
        case "itip":
            guard parts.count == 5, let gtin = gtin14(parts[0], parts[1]), GS1CheckDigit.allDigits(parts[2] + parts[3]),
                  let serial = reencode(parts[4]) else { return nil }
            return "https://id.gs1.org/8006/\(gtin)\(parts[2])\(parts[3])/21/\(serial)"
        case "upui":
            guard parts.count == 3, let gtin = gtin14(parts[0], parts[1]), let tpx = reencode(parts[2]) else { return nil }
            return "https://id.gs1.org/01/\(gtin)/235/\(tpx)"
        default:
            return nil
        }
    }

    private static func epcClass(_ body: String) -> String? {
        let prefix = "lgtin:"
        guard body.hasPrefix(prefix) else { return nil }
        let parts = body.dropFirst(prefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let gtin = gtin14(parts[0], parts[1]), let lot = reencode(parts[2]) else { return nil }
        return "https://id.gs1.org/01/\(gtin)/10/\(lot)"
    }

    /// Patterns whose last component is `*` name the class above the serial.
    private static func pattern(_ body: String) -> String? {
        guard let colon = body.firstIndex(of: ":") else { return nil }
        let scheme = body[..<colon]
        let parts = body[body.index(after: colon)...].split(separator: ".", omittingEmptySubsequences: false)
        guard parts.last == "*" else { return nil }
        switch scheme {
        case "sgtin":
            guard parts.count == 3, let gtin = gtin14(parts[0], parts[1]) else { return nil }
            return "https://id.gs1.org/01/\(gtin)"
        case "grai", "gdti", "sgcn":
            guard parts.count == 3, let key = keyed(String(parts[0] + parts[1]), length: 12) else { return nil }
            switch scheme {
            case "grai": return "https://id.gs1.org/8003/0\(key)"
            case "gdti": return "https://id.gs1.org/253/\(key)"
            default: return "https://id.gs1.org/255/\(key)"
            }
        case "cpi":
            guard parts.count == 3, GS1CheckDigit.allDigits(parts[0]), let reference = reencode(parts[1]) else { return nil }
            return "https://id.gs1.org/8010/\(parts[0])\(reference)"
        case "itip":
            guard parts.count == 5, let gtin = gtin14(parts[0], parts[1]), GS1CheckDigit.allDigits(parts[2] + parts[3]) else { return nil }
            return "https://id.gs1.org/8006/\(gtin)\(parts[2])\(parts[3])"
        default:
            return nil
        }
    }

    /// Indicator digit (first of the item reference), company prefix, rest of the item reference: 13 digits.
    static func gtinBody(companyPrefix: Substring, itemReference: Substring) -> String? {
        guard GS1CheckDigit.allDigits(companyPrefix), GS1CheckDigit.allDigits(itemReference),
              let indicator = itemReference.first, companyPrefix.count + itemReference.count == 13 else { return nil }
        return String(indicator) + companyPrefix + itemReference.dropFirst()
    }

    private static func gtin14(_ companyPrefix: Substring, _ itemReference: Substring) -> String? {
        gtinBody(companyPrefix: companyPrefix, itemReference: itemReference).flatMap(GS1CheckDigit.appended(to:))
    }

    private static func keyed(_ digits: String, length: Int) -> String? {
        guard digits.count == length, GS1CheckDigit.allDigits(digits) else { return nil }
        return GS1CheckDigit.appended(to: digits)
    }

    private static func reencode(_ component: Substring) -> String? {
        unescape(component).map(DigitalLink.percentEncode)
    }

    /// A URN component with its `%xx` escapes (TDS 6.3) decoded; nil when an escape is broken.
    static func unescape(_ component: Substring) -> String? {
        DigitalLink.percentDecode(component)
    }

    /// A value escaped for an EPC URN component (TDS table 6-1).
    static func escape(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "%22"
            case "%": out += "%25"
            case "&": out += "%26"
            case "/": out += "%2F"
            case "<": out += "%3C"
            case ">": out += "%3E"
            case "?": out += "%3F"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
