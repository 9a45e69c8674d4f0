/// The HIBC Supplier Labeling Standard (ANSI/HIBC 2.x) as UDI carrier:
/// `+` LIC(4, a letter first) PCN(1-18) U/M(1 digit), optionally `/` and the secondary data
/// (quantity, date, lot or serial, then `/S`, `/14D`, `/16D` supplemental fields), and the mod-43
/// check character over everything before it. The DI is LIC + PCN + U/M.
enum HIBCCCarrier {
    /// The 43 characters of the mod-43 alphabet, in value order.
    static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-. $/+%".utf8)

    static func value(_ byte: UInt8) -> Int? { alphabet.firstIndex(of: byte) }

    /// The check character over `data` (which starts with the `+` flag).
    static func checkCharacter(_ data: some Collection<UInt8>) -> UInt8? {
        var sum = 0
        for byte in data {
            guard let value = value(byte) else { return nil }
            sum = (sum + value) % 43
        }
        return alphabet[sum]
    }

    static func parse(_ text: String) throws(UDIError) -> UDI {
        let bytes = Array(text.utf8)
        guard bytes.count >= 8 else { throw UDIError("malformed_udi", "an HIBCC UDI is at least + LIC(4) PCN U/M and a check character") }
        if let bad = bytes.first(where: { value($0) == nil }) {
            throw UDIError("malformed_udi", "HIBCC carries only A-Z, 0-9 and - . space $ / + %, not \"\(Unicode.Scalar(bad))\"")
        }
        let data = bytes.dropLast()
        guard let given = bytes.last, let expected = checkCharacter(data) else { throw UDIError("malformed_udi", "unreadable HIBCC data") }
        guard given == expected else {
            throw UDIError("bad_check_character", "the HIBCC check character is \"\(Unicode.Scalar(given))\"; the data gives \"\(Unicode.Scalar(expected))\"")
        }
        let body = Array(data.dropFirst())
        let parts = body.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map { Array($0) }
        guard let primary = parts.first else { throw UDIError("malformed_udi", "an HIBCC UDI names its device") }
        if primary.first == UInt8(ascii: "$") || primary.first.map(isDigit) == true {
            throw UDIError("missing_di", "an HIBCC secondary structure alone names no device identifier (LIC, PCN, U/M)")
        }
        guard primary.count >= 6, primary.count <= 23, primary.allSatisfy(isAlphanumeric), let first = primary.first, isLetter(first) else {
            throw UDIError("malformed_udi", "the HIBCC primary is a LIC of four characters (a letter first), a PCN of 1 to 18 and a U/M digit")
        }
        guard let unit = primary.last, isDigit(unit) else { throw UDIError("malformed_udi", "the HIBCC primary ends with its unit of measure, a digit") }
        var udi = UDI(agency: .hibcc, deviceIdentifier: String(decoding: primary, as: UTF8.self))
        guard parts.count > 1 else { return udi }
        try readSecondary(parts[1], into: &udi)
        for field in parts.dropFirst(2) { try readSupplemental(field, into: &udi) }
        return udi
    }

    /// `$$` lot with a date flag, `$$+` serial with a date flag, `$` lot, `$+` serial, or the old
    /// five-digit Julian date and lot.
    private static func readSecondary(_ field: [UInt8], into udi: inout UDI) throws(UDIError) {
        var rest = field[...]
        var isSerial = false
        if rest.starts(with: Array("$$".utf8)) {
            rest = rest.dropFirst(2)
            if rest.first == UInt8(ascii: "+") { isSerial = true; rest = rest.dropFirst() }
            rest = try readQuantityAndDate(rest, into: &udi)
        } else if rest.first == UInt8(ascii: "$") {
            rest = rest.dropFirst()
            if rest.first == UInt8(ascii: "+") { isSerial = true; rest = rest.dropFirst() }
        } else if rest.count >= 5, rest.prefix(5).allSatisfy(isDigit) {
            udi.expiryDate = try julian(Array(rest.prefix(5)), hour: false)
            rest = rest.dropFirst(5)
        } else {
            throw UDIError("malformed_udi", "the HIBCC secondary begins with $, $$ or a five-digit Julian date, not \"\(String(decoding: field.prefix(3), as: UTF8.self))\"")
        }
        guard rest.count <= 18, rest.allSatisfy(isAlphanumeric) else {
            throw UDIError("malformed_udi", "the HIBCC \(isSerial ? "serial" : "lot") is up to 18 letters and digits")
        }
        guard !rest.isEmpty else { return }
        let value = String(decoding: rest, as: UTF8.self)
        if isSerial { udi.serial = value } else { udi.lot = value }
    }

    /// After `$$`: a flag digit says which date format follows (0-1 start `MMYY` itself; 2 `MMDDYY`;
    /// 3 `YYMMDD`; 4 `YYMMDDHH`; 5 `YYJJJ`; 6 `YYJJJHH`; 7 none), 8 and 9 put a 2- or 5-digit quantity first.
    private static func readQuantityAndDate(_ field: ArraySlice<UInt8>, into udi: inout UDI) throws(UDIError) -> ArraySlice<UInt8> {
        var rest = field
        guard let flag = rest.first else { return rest }
        if flag == UInt8(ascii: "8") || flag == UInt8(ascii: "9") {
            let quantityDigits = flag == UInt8(ascii: "8") ? 2 : 5
            rest = rest.dropFirst()
            guard rest.count >= quantityDigits, rest.prefix(quantityDigits).allSatisfy(isDigit) else {
                throw UDIError("malformed_udi", "HIBCC flag \(Unicode.Scalar(flag)) is followed by a \(quantityDigits)-digit quantity")
            }
            rest = rest.dropFirst(quantityDigits)
            guard let next = rest.first, next != UInt8(ascii: "8"), next != UInt8(ascii: "9") else { return rest }
            return try readDate(rest, flag: next, into: &udi)
        }
        return try readDate(rest, flag: flag, into: &udi)
    }

    private static func readDate(_ field: ArraySlice<UInt8>, flag: UInt8, into udi: inout UDI) throws(UDIError) -> ArraySlice<UInt8> {
        func digits(_ count: Int, from start: Int) throws(UDIError) -> [Int] {
            let slice = field.dropFirst(start).prefix(count)
            guard slice.count == count, slice.allSatisfy(isDigit) else {
                throw UDIError("bad_expiry", "the HIBCC expiry after flag \(Unicode.Scalar(flag)) is \(count) digits")
            }
            return slice.map { Int($0 - 0x30) }
        }
        func pair(_ d: [Int], _ at: Int) -> Int { d[at] * 10 + d[at + 1] }
        func date(_ year: Int, _ month: Int, _ day: Int?) throws(UDIError) -> UDIDate {
            guard let date = UDIDate(year: 2000 + year, month: month, day: day) else {
                throw UDIError("bad_expiry", "the HIBCC expiry \(2000 + year)-\(month)\(day.map { "-\($0)" } ?? "") is no date")
            }
            return date
        }
        switch flag {
        case UInt8(ascii: "0"), UInt8(ascii: "1"):
            let d = try digits(4, from: 0)
            udi.expiryDate = try date(pair(d, 2), pair(d, 0), nil)
            return field.dropFirst(4)
        case UInt8(ascii: "2"):
            let d = try digits(6, from: 1)
            udi.expiryDate = try date(pair(d, 4), pair(d, 0), pair(d, 2))
            return field.dropFirst(7)
        case UInt8(ascii: "3"), UInt8(ascii: "4"):
            let hour = flag == UInt8(ascii: "4")
            let d = try digits(hour ? 8 : 6, from: 1)
            if hour, pair(d, 6) > 23 { throw UDIError("bad_expiry", "the HIBCC expiry hour is 00 to 23") }
            udi.expiryDate = try date(pair(d, 0), pair(d, 2), pair(d, 4))
            return field.dropFirst(hour ? 9 : 7)
        case UInt8(ascii: "5"), UInt8(ascii: "6"):
            let hour = flag == UInt8(ascii: "6")
            let d = try digits(hour ? 7 : 5, from: 1)
            udi.expiryDate = try julian(Array(field.dropFirst().prefix(5)), hour: false)
            if hour, d[5] * 10 + d[6] > 23 { throw UDIError("bad_expiry", "the HIBCC expiry hour is 00 to 23") }
            return field.dropFirst(hour ? 8 : 6)
        case UInt8(ascii: "7"):
            return field.dropFirst()
        default:
            throw UDIError("malformed_udi", "HIBCC $$ is followed by a date flag 0-9, not \"\(Unicode.Scalar(flag))\"")
        }
    }

    /// `YYJJJ`: year and day of the year.
    private static func julian(_ digits: [UInt8], hour: Bool) throws(UDIError) -> UDIDate {
        let d = digits.map { Int($0 - 0x30) }
        guard d.count == 5, let date = UDIDate(year: 2000 + d[0] * 10 + d[1], dayOfYear: d[2] * 100 + d[3] * 10 + d[4]) else {
            throw UDIError("bad_expiry", "the HIBCC Julian expiry \(String(decoding: digits, as: UTF8.self)) is no day")
        }
        return date
    }

    /// `S` serial, `14D` expiry (YYYYMMDD), `16D` manufacture date (YYYYMMDD).
    private static func readSupplemental(_ field: [UInt8], into udi: inout UDI) throws(UDIError) {
        func yyyymmdd(_ text: ArraySlice<UInt8>, _ name: String) throws(UDIError) -> UDIDate {
            guard text.count == 8, text.allSatisfy(isDigit) else { throw UDIError("bad_expiry", "the HIBCC \(name) is YYYYMMDD") }
            let d = text.map { Int($0 - 0x30) }
            guard let date = UDIDate(year: d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3], month: d[4] * 10 + d[5], day: d[6] * 10 + d[7]) else {
                throw UDIError("bad_expiry", "the HIBCC \(name) \(String(decoding: text, as: UTF8.self)) is no date")
            }
            return date
        }
        if field.starts(with: Array("14D".utf8)) {
            udi.expiryDate = try yyyymmdd(field.dropFirst(3), "expiry (/14D)")
        } else if field.starts(with: Array("16D".utf8)) {
            udi.manufactureDate = try yyyymmdd(field.dropFirst(3), "manufacture date (/16D)")
        } else if field.first == UInt8(ascii: "S") {
            let serial = field.dropFirst()
            guard (1...18).contains(serial.count), serial.allSatisfy(isAlphanumeric) else {
                throw UDIError("malformed_udi", "the HIBCC serial (/S) is 1 to 18 letters and digits")
            }
            udi.serial = String(decoding: serial, as: UTF8.self)
        } else {
            throw UDIError("malformed_udi", "unknown HIBCC supplemental field \"/\(String(decoding: field.prefix(4), as: UTF8.self))\" (known: /S, /14D, /16D)")
        }
    }

    static func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }
    static func isLetter(_ byte: UInt8) -> Bool { (0x41...0x5A).contains(byte) }
    static func isAlphanumeric(_ byte: UInt8) -> Bool { isDigit(byte) || isLetter(byte) }
}
