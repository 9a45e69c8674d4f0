/// A GS1 element string as a 2D DataMatrix scanner produces it: human-readable `(01)…(17)…(10)…(21)…`,
/// or the raw form, where a variable-length field ends at a group separator (FNC1, ASCII 29).
public struct ElementString: Sendable {
    public let fields: [(ai: String, value: String)]

    public func value(of ai: String) -> String? { fields.first { $0.ai == ai }?.value }

    static let groupSeparator: Unicode.Scalar = "\u{1D}"

    /// Reads either form. `referenceYear` resolves two-digit years (GS1 General Specifications 7.12).
    public init(_ text: String, referenceYear: Int) throws(GS1IdentifierError) {
        let trimmed = text.trimmingSpaces
        if trimmed.hasPrefix("(") {
            fields = try ElementString.bracketed(trimmed)
        } else {
            fields = try ElementString.raw(trimmed)
        }
        guard !fields.isEmpty else { throw GS1IdentifierError("malformed", "the element string is empty") }
        var seen = Set<String>()
        for field in fields {
            guard seen.insert(field.ai).inserted else {
                throw GS1IdentifierError("repeated_ai", "AI (\(field.ai)) appears twice")
            }
            try ApplicationIdentifier.check(ai: field.ai, value: field.value, referenceYear: referenceYear)
        }
    }

    private static func bracketed(_ text: String) throws(GS1IdentifierError) -> [(ai: String, value: String)] {
        var result: [(ai: String, value: String)] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            guard rest.first == "(", let close = rest.firstIndex(of: ")") else {
                throw GS1IdentifierError("malformed", "expected \"(AI)\" at \"\(rest.prefix(20))\"")
            }
            let ai = String(rest[rest.index(after: rest.startIndex)..<close])
            guard ApplicationIdentifier.definition(ai) != nil else { throw GS1IdentifierError("unknown_ai", "(\(ai.prefix(8))) is not an AI this service reads") }
            var valueEnd = rest.index(after: close)
            // A value runs to the next "(AI)" that names a known AI; set 82 allows brackets inside values.
            while valueEnd < rest.endIndex {
                if rest[valueEnd] == "(", let next = rest[valueEnd...].firstIndex(of: ")"),
                   ApplicationIdentifier.definition(String(rest[rest.index(after: valueEnd)..<next])) != nil { break }
                valueEnd = rest.index(after: valueEnd)
            }
            result.append((ai, String(rest[rest.index(after: close)..<valueEnd])))
            rest = rest[valueEnd...]
        }
        return result
    }

    private static func raw(_ text: String) throws(GS1IdentifierError) -> [(ai: String, value: String)] {
        var scalars = Array(text.replacingGroupSeparatorStandIns.unicodeScalars)
        for identifier in ["]d2", "]C1", "]Q3", "]e0", "]J1"] where String(String.UnicodeScalarView(scalars)).hasPrefix(identifier) {
            scalars.removeFirst(3)
        }
        while scalars.first == groupSeparator { scalars.removeFirst() }
        var result: [(ai: String, value: String)] = []
        var index = 0
        while index < scalars.count {
            guard let (ai, definition) = ApplicationIdentifier.match(scalars, at: index) else {
                let shown = String(String.UnicodeScalarView(scalars[index..<min(scalars.count, index + 4)]))
                throw GS1IdentifierError("unknown_ai", "no AI this service reads starts at \"\(shown)\"")
            }
            index += ai.unicodeScalars.count
            if let length = definition.fixedLength {
                guard index + length <= scalars.count else {
                    throw GS1IdentifierError("malformed", "(\(ai)) needs \(length) characters")
                }
                result.append((ai, String(String.UnicodeScalarView(scalars[index..<(index + length)]))))
                index += length
                if index < scalars.count, scalars[index] == groupSeparator { index += 1 }
                continue
            }
            let end = scalars[index...].firstIndex(of: groupSeparator) ?? scalars.count
            let value = String(String.UnicodeScalarView(scalars[index..<end]))
            if value.unicodeScalars.count > definition.maximumLength {
                throw GS1IdentifierError("cannot_split", "(\(ai)) \(definition.title) runs \(value.unicodeScalars.count) characters, past its \(definition.maximumLength): the separator after it is missing, so the fields after it cannot be split")
            }
            if end == scalars.count, let hidden = hiddenField(in: value, after: result.map(\.ai) + [ai]) {
                throw GS1IdentifierError("cannot_split", "(\(ai)) \(definition.title) is the last field but could end where (\(hidden)) begins: a separator may be missing, so it cannot be split")
            }
            result.append((ai, value))
            index = end == scalars.count ? end : end + 1
        }
        return result
    }

    /// The AIs printed on medicine packs after a variable-length field; internal AIs (90-99) and the
    /// rest would match inside too many honest serials.
    static let hideable: Set<String> = ["01", "10", "11", "17", "21", "240", "30", "710", "711", "712", "713", "714", "715", "716"]

    /// The AI that a trailing variable-length value could be hiding when a scanner dropped the
    /// separator: one not seen yet whose fields read cleanly to the end.
    private static func hiddenField(in value: String, after seen: [String]) -> String? {
        let scalars = Array(value.unicodeScalars)
        guard scalars.count > 2 else { return nil }
        for start in 1..<(scalars.count - 1) {
            let tail = String(String.UnicodeScalarView(scalars[start...]))
            guard let parsed = try? raw(tail), let first = parsed.first, hideable.contains(first.ai), !seen.contains(first.ai),
                  parsed.allSatisfy({ (try? ApplicationIdentifier.check(ai: $0.ai, value: $0.value, referenceYear: 2000)) != nil }),
                  Set(parsed.map(\.ai)).isDisjoint(with: seen) else { continue }
            return first.ai
        }
        return nil
    }
}

/// What this service knows of each GS1 Application Identifier it reads (General Specifications 3.2).
public struct ApplicationIdentifier: Sendable {
    public let title: String
    public let fixedLength: Int?
    public let maximumLength: Int
    public let numeric: Bool
    public let isDate: Bool

    static func fixed(_ title: String, _ length: Int, numeric: Bool = true, date: Bool = false) -> ApplicationIdentifier {
        ApplicationIdentifier(title: title, fixedLength: length, maximumLength: length, numeric: numeric, isDate: date)
    }

    static func variable(_ title: String, _ maximum: Int, numeric: Bool = false) -> ApplicationIdentifier {
        ApplicationIdentifier(title: title, fixedLength: nil, maximumLength: maximum, numeric: numeric, isDate: false)
    }

    static let table: [String: ApplicationIdentifier] = {
        var table: [String: ApplicationIdentifier] = [
            "00": .fixed("SSCC", 18), "01": .fixed("GTIN", 14), "02": .fixed("CONTENT", 14),
            "10": .variable("BATCH/LOT", 20), "11": .fixed("PROD DATE", 6, date: true), "12": .fixed("DUE DATE", 6, date: true),
            "13": .fixed("PACK DATE", 6, date: true), "15": .fixed("BEST BEFORE", 6, date: true),
            "16": .fixed("SELL BY", 6, date: true), "17": .fixed("USE BY OR EXPIRY", 6, date: true), "20": .fixed("VARIANT", 2),
            "21": .variable("SERIAL", 20), "22": .variable("CPV", 20), "235": .variable("TPX", 28),
            "240": .variable("ADDITIONAL ID", 30), "241": .variable("CUST. PART No.", 30),
            "253": .variable("GDTI", 30), "254": .variable("GLN EXTENSION COMPONENT", 20), "255": .variable("GCN", 25),
            "30": .variable("VAR. COUNT", 8, numeric: true), "37": .variable("COUNT", 8, numeric: true),
            "400": .variable("ORDER NUMBER", 30), "401": .variable("GINC", 30), "402": .fixed("GSIN", 17),
            "422": .fixed("ORIGIN", 3), "7003": .fixed("EXPIRY TIME", 10),
            "8003": .variable("GRAI", 30), "8004": .variable("GIAI", 30), "8006": .fixed("ITIP", 18),
            "8010": .variable("CPID", 30), "8011": .variable("CPID SERIAL", 12, numeric: true),
            "8017": .fixed("GSRN - PROVIDER", 18), "8018": .fixed("GSRN - RECIPIENT", 18),
        ]
        for ai in 410...417 { table[String(ai)] = .fixed("GLN", 13) }
        for ai in 710...716 { table[String(ai)] = .variable("NHRN", 20) }
        // Trade measures (310n-369n): six digits, n giving the decimal point.
        for group in 310...369 { for decimals in 0...9 { table["\(group)\(decimals)"] = .fixed("MEASURE", 6) } }
        for ai in 90...99 { table[String(ai)] = .variable("INTERNAL", 90) }
        return table
    }()

    public static func definition(_ ai: String) -> ApplicationIdentifier? { table[ai] }

    /// The AI starting at `index`: AIs are prefix-free, so at most one of the 2-, 3- and 4-digit reads is known.
    static func match(_ scalars: [Unicode.Scalar], at index: Int) -> (String, ApplicationIdentifier)? {
        for length in 2...4 where index + length <= scalars.count {
            let candidate = String(String.UnicodeScalarView(scalars[index..<(index + length)]))
            if let definition = table[candidate] { return (candidate, definition) }
        }
        return nil
    }

    /// Checks a value against its AI: digits where numeric, check digits of keys, calendar dates.
    static func check(ai: String, value: String, referenceYear: Int) throws(GS1IdentifierError) {
        guard let definition = table[ai] else { throw GS1IdentifierError("unknown_ai", "(\(ai)) is not an AI this service reads") }
        if let length = definition.fixedLength, value.unicodeScalars.count != length {
            throw GS1IdentifierError("malformed", "(\(ai)) \(definition.title) is \(length) characters, not \(value.unicodeScalars.count)")
        }
        guard !value.isEmpty, value.unicodeScalars.count <= definition.maximumLength else {
            throw GS1IdentifierError("malformed", "(\(ai)) \(definition.title) is 1 to \(definition.maximumLength) characters")
        }
        if definition.numeric, !GS1CheckDigit.allDigits(value) {
            throw GS1IdentifierError("malformed", "(\(ai)) \(definition.title) is digits only")
        }
        if !value.unicodeScalars.allSatisfy(GS1Characters.isSet82) {
            throw GS1IdentifierError("malformed", "(\(ai)) \(definition.title) has a character outside GS1 set 82")
        }
        switch ai {
        case "01", "02": _ = try GTIN(value)
        case "00": _ = try SSCC(value)
        case "410", "411", "412", "413", "414", "415", "416", "417": _ = try GLN(value)
        default: break
        }
        if definition.isDate { _ = try GS1Date(yymmdd: value, referenceYear: referenceYear, field: "(\(ai)) \(definition.title)") }
    }
}

/// A GS1 date (`YYMMDD`): day 00 means the last day of the month; the century follows GS1 General
/// Specifications 7.12 (a year more than 50 ahead of the reference year is in the previous century,
/// one 50 or more behind it in the next).
public struct GS1Date: Comparable, Hashable, Sendable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int

    public init(yymmdd text: String, referenceYear: Int, field: String = "expiry") throws(GS1IdentifierError) {
        let digits = Array(text.utf8)
        guard digits.count == 6, GS1CheckDigit.allDigits(text) else {
            throw GS1IdentifierError("bad_expiry", "\(field) is YYMMDD, six digits, not \"\(text.prefix(12))\"")
        }
        func pair(_ at: Int) -> Int { Int(digits[at] - 0x30) * 10 + Int(digits[at + 1] - 0x30) }
        let yy = pair(0), mm = pair(2), dd = pair(4)
        let difference = yy - referenceYear % 100
        var century = referenceYear - referenceYear % 100
        if (51...99).contains(difference) { century -= 100 } else if (-99...(-50)).contains(difference) { century += 100 }
        guard (1...12).contains(mm) else { throw GS1IdentifierError("bad_expiry", "\(field) \(text) has month \(mm)") }
        let year = century + yy
        let last = GS1Date.daysIn(month: mm, year: year)
        guard dd <= last else { throw GS1IdentifierError("bad_expiry", "\(field) \(text): \(year)-\(mm) has \(last) days") }
        self.year = year
        self.month = mm
        self.day = dd == 0 ? last : dd
    }

    /// A calendar date, nil when there is no such day.
    public init?(year: Int, month: Int, day: Int) {
        guard (1...9999).contains(year), (1...12).contains(month), (1...GS1Date.daysIn(month: month, year: year)).contains(day) else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    public init?(isoDate text: String) {
        let parts = text.split(separator: "-")
        guard parts.count == 3, let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
              (1...12).contains(month), (1...GS1Date.daysIn(month: month, year: year)).contains(day) else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    public var description: String {
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)-\(two(month))-\(two(day))"
    }

    public static func < (lhs: GS1Date, rhs: GS1Date) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }

    public static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}

extension String {
    var trimmingSpaces: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { $0 != " " && $0 != "\n" && $0 != "\r" && $0 != "\t" }),
              let last = scalars.lastIndex(where: { $0 != " " && $0 != "\n" && $0 != "\r" && $0 != "\t" }) else { return "" }
        return String(scalars[first...last])
    }

    /// Scanners configured for text fields often render FNC1 as `<GS>` or `{GS}`.
    var replacingGroupSeparatorStandIns: String {
        var text = self
        for standIn in ["<GS>", "{GS}", "\\x1D", "\\u001d", "\\u001D"] where text.contains(standIn) {
            text = text.replacing(standIn, with: "\u{1D}")
        }
        return text
    }
}
