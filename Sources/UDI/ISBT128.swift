/// ISBT 128 (ICCBBA) as UDI carrier for HCT/P devices: data structures one after another, each
/// named by its data identifier. The ones a UDI uses:
/// `=/` Processor Product Identification Code (DS 034, the DI: FIN(P) 5, FPC 6, PDC 5),
/// `=` + a letter or digit: Donation Identification Number (DS 001: 13 characters and 2 flags),
/// `=,` Product Divisions (DS 032, the serial: 6), `=>` Expiration Date (DS 004, `cyyjjj`),
/// `&>` Expiration Date and Time (DS 005, `cyyjjjhhmm`), `=}` Production Date (DS 008, `cyyjjj`),
/// `&,1` MPHO Lot Number (DS 035: 18).
enum ISBT128Carrier {
    private struct Structure {
        let identifier: [UInt8]
        let length: Int
        let name: String
    }

    private static let structures: [Structure] = [
        Structure(identifier: Array("=/".utf8), length: 16, name: "Processor Product Identification Code (=/)"),
        Structure(identifier: Array("=,".utf8), length: 6, name: "Product Divisions (=,)"),
        Structure(identifier: Array("=>".utf8), length: 6, name: "Expiration Date (=>)"),
        Structure(identifier: Array("&>".utf8), length: 10, name: "Expiration Date and Time (&>)"),
        Structure(identifier: Array("=}".utf8), length: 6, name: "Production Date (=})"),
        Structure(identifier: Array("&,1".utf8), length: 18, name: "MPHO Lot Number (&,1)"),
    ]

    static func parse(_ text: String) throws(UDIError) -> UDI {
        let bytes = Array(text.utf8)
        var position = 0
        var deviceIdentifier: String?
        var udi = UDI(agency: .iccbba, deviceIdentifier: "")
        while position < bytes.count {
            let rest = bytes[position...]
            let structure: Structure
            if let known = structures.first(where: { rest.starts(with: $0.identifier) }) {
                structure = known
            } else if rest.count >= 2, rest.first == UInt8(ascii: "="), HIBCCCarrier.isAlphanumeric(rest[position + 1]) {
                structure = Structure(identifier: Array("=".utf8), length: 15, name: "Donation Identification Number (=)")
            } else {
                throw UDIError("malformed_udi", "unknown ISBT 128 data identifier \"\(String(decoding: rest.prefix(3), as: UTF8.self))\" at character \(position + 1)")
            }
            let start = position + structure.identifier.count
            guard bytes.count - start >= structure.length else {
                throw UDIError("malformed_udi", "the ISBT 128 \(structure.name) is \(structure.length) characters; only \(bytes.count - start) follow")
            }
            let data = Array(bytes[start..<(start + structure.length)])
            guard data.allSatisfy(HIBCCCarrier.isAlphanumeric) else {
                throw UDIError("malformed_udi", "the ISBT 128 \(structure.name) is letters and digits")
            }
            let value = String(decoding: data, as: UTF8.self)
            switch structure.identifier {
            case Array("=/".utf8): deviceIdentifier = value
            case Array("=,".utf8): udi.serial = value
            case Array("=>".utf8), Array("&>".utf8): udi.expiryDate = try date(data, structure.name)
            case Array("=}".utf8): udi.manufactureDate = try date(data, structure.name)
            case Array("&,1".utf8): udi.lot = value
            default: udi.distinctIdentifier = String(value.prefix(13))
            }
            position = start + structure.length
        }
        guard let deviceIdentifier else {
            throw UDIError("missing_di", "an ISBT 128 UDI carries its device identifier as the Processor Product Identification Code (=/)")
        }
        udi.deviceIdentifier = deviceIdentifier
        return udi
    }

    /// `cyyjjj` (century digit after 2000, year, day of the year), optionally followed by `hhmm`.
    private static func date(_ data: [UInt8], _ name: String) throws(UDIError) -> UDIDate {
        guard data.prefix(6).allSatisfy(HIBCCCarrier.isDigit), data.allSatisfy(HIBCCCarrier.isDigit) else {
            throw UDIError("bad_expiry", "the ISBT 128 \(name) is digits (cyyjjj)")
        }
        let d = data.map { Int($0 - 0x30) }
        guard let date = UDIDate(year: 2000 + d[0] * 100 + d[1] * 10 + d[2], dayOfYear: d[3] * 100 + d[4] * 10 + d[5]) else {
            throw UDIError("bad_expiry", "the ISBT 128 \(name) \(String(decoding: data, as: UTF8.self)) is no day")
        }
        if d.count == 10, d[6] * 10 + d[7] > 23 || d[8] * 10 + d[9] > 59 {
            throw UDIError("bad_expiry", "the ISBT 128 \(name) has no such time of day")
        }
        return date
    }
}
