/// Byte classes from the ABNF of RFC 9110 §5.6 and RFC 9112, as lookup tables so the hot loops stay branch-light.
enum ByteClass {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let sp: UInt8 = 0x20
    static let htab: UInt8 = 0x09
    static let colon: UInt8 = 0x3A

    /// tchar (RFC 9110 §5.6.2): the characters of method names, header names and codings.
    static let tchar: [Bool] = (0..<256).map { byte in
        switch UInt8(byte) {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "A")...UInt8(ascii: "Z"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(UInt8(byte))
        }
    }

    /// field-vchar plus SP and HTAB (RFC 9110 §5.5): what a field value may hold. obs-text is allowed;
    /// CR, LF, NUL and every other control byte are not.
    static let fieldValue: [Bool] = (0..<256).map { byte in
        byte == 0x09 || byte == 0x20 || (0x21...0x7E).contains(byte) || byte >= 0x80
    }

    /// Visible ASCII, the bytes a request-target may use (RFC 9112 §3.2, RFC 3986 §2).
    static let targetByte: [Bool] = (0..<256).map { byte in (0x21...0x7E).contains(byte) }

    static func isTChar(_ byte: UInt8) -> Bool { tchar[Int(byte)] }
    static func isFieldValue(_ byte: UInt8) -> Bool { fieldValue[Int(byte)] }
    static func isWhitespace(_ byte: UInt8) -> Bool { byte == sp || byte == htab }

    /// The value of a hexadecimal digit, or nil.
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// ASCII lower-casing of one byte.
    static func lower(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }
}
