/// EPC binary encodings read from an RFID tag's EPC memory (GS1 EPC Tag Data Standard, sections 14
/// and 15): the 96-bit SGTIN (packs, header 0x30) and GIAI (assets such as devices, header 0x34).
/// Other headers are refused by name rather than guessed at.
public struct EPCTag: Equatable, Sendable {
    public enum Scheme: String, Sendable { case sgtin96 = "sgtin-96", giai96 = "giai-96" }

    public let scheme: Scheme
    public let filter: Int
    public let companyPrefix: String
    /// SGTIN: indicator digit and item reference; GIAI: the individual asset reference.
    public let reference: String
    /// SGTIN only: the serial number.
    public let serial: String?

    /// The tag URI, with the filter value (`urn:epc:tag:sgtin-96:3.0614141.812345.6789`).
    public var tagURI: String {
        "urn:epc:tag:\(scheme.rawValue):\(filter).\(companyPrefix).\(reference)" + (serial.map { ".\($0)" } ?? "")
    }

    /// The pure identity EPC URN (`urn:epc:id:sgtin:0614141.812345.6789`), what events and devices name.
    public var pureIdentity: String {
        switch scheme {
        case .sgtin96: "urn:epc:id:sgtin:\(companyPrefix).\(reference).\(serial ?? "")"
        case .giai96: "urn:epc:id:giai:\(companyPrefix).\(reference)"
        }
    }

    /// (company prefix bits, digits; reference bits, digits) by partition value (TDS tables 14-2 and 14-11).
    static let sgtinPartitions = [(40, 12, 4, 1), (37, 11, 7, 2), (34, 10, 10, 3), (30, 9, 14, 4), (27, 8, 17, 5), (24, 7, 20, 6), (20, 6, 24, 7)]
    static let giaiPartitions = [(40, 12, 42, 13), (37, 11, 45, 14), (34, 10, 48, 15), (30, 9, 52, 16), (27, 8, 55, 17), (24, 7, 58, 18), (20, 6, 62, 19)]

    /// Decodes the hex of a tag's EPC bank (24 hex digits for the 96-bit schemes; spaces allowed).
    public init(hex text: String) throws(GS1IdentifierError) {
        let digits = Array(text.unicodeScalars.filter { $0 != " " && $0 != "-" })
        guard !digits.isEmpty, digits.allSatisfy({ $0.properties.isASCIIHexDigit }) else {
            throw GS1IdentifierError("malformed_tag", "an EPC tag is hexadecimal")
        }
        guard digits.count >= 2, let header = UInt8(String(String.UnicodeScalarView(digits.prefix(2))), radix: 16) else {
            throw GS1IdentifierError("malformed_tag", "too short for an EPC header")
        }
        let scheme: Scheme
        switch header {
        case 0x30: scheme = .sgtin96
        case 0x34: scheme = .giai96
        default:
            throw GS1IdentifierError("unsupported_header", "EPC header 0x\(String(String.UnicodeScalarView(digits.prefix(2))).uppercased()) is not SGTIN-96 (0x30) or GIAI-96 (0x34), the encodings read here")
        }
        guard digits.count == 24 else { throw GS1IdentifierError("malformed_tag", "\(scheme.rawValue) is 96 bits: 24 hex digits, not \(digits.count)") }
        var bits = BitReader(hex: digits)
        _ = bits.read(8)
        filter = Int(bits.read(3))
        let partition = Int(bits.read(3))
        let table = scheme == .sgtin96 ? Self.sgtinPartitions : Self.giaiPartitions
        guard partition < table.count else { throw GS1IdentifierError("malformed_tag", "partition value \(partition) is reserved") }
        let (prefixBits, prefixDigits, referenceBits, referenceDigits) = table[partition]
        let prefix = bits.read(prefixBits)
        let reference = bits.read(referenceBits)
        guard let prefixText = Self.padded(prefix, digits: prefixDigits) else {
            throw GS1IdentifierError("malformed_tag", "the company prefix does not fit its \(prefixDigits) digits")
        }
        self.scheme = scheme
        companyPrefix = prefixText
        switch scheme {
        case .sgtin96:
            guard let item = Self.padded(reference, digits: referenceDigits) else {
                throw GS1IdentifierError("malformed_tag", "the item reference does not fit its \(referenceDigits) digits")
            }
            self.reference = item
            serial = String(bits.read(38))
        case .giai96:
            guard String(reference).count <= referenceDigits else {
                throw GS1IdentifierError("malformed_tag", "the asset reference does not fit its \(referenceDigits) digits")
            }
            self.reference = String(reference)
            serial = nil
        }
    }

    static func padded(_ value: UInt64, digits: Int) -> String? {
        let text = String(value)
        guard text.count <= digits else { return nil }
        return String(repeating: "0", count: digits - text.count) + text
    }
}

/// Reads big-endian bit fields from hex digits; fields here are at most 62 bits.
struct BitReader {
    private var bits: [Bool] = []
    private var position = 0

    init(hex digits: [Unicode.Scalar]) {
        for digit in digits {
            let value = UInt8(String(digit), radix: 16) ?? 0
            for shift in stride(from: 3, through: 0, by: -1) { bits.append((value >> UInt8(shift)) & 1 == 1) }
        }
    }

    mutating func read(_ count: Int) -> UInt64 {
        var value: UInt64 = 0
        for _ in 0..<count {
            value <<= 1
            if position < bits.count, bits[position] { value |= 1 }
            position += 1
        }
        return value
    }
}
