/// The GS1 modulo-10 check digit (GS1 General Specifications 7.9.1): weights 3 and 1 alternate from
/// the digit next to the check digit leftwards.
public enum GS1CheckDigit {
    /// The check digit for `digits` (the key without its last digit), nil when not all are 0-9.
    public static func compute<S: StringProtocol>(_ digits: S) -> Character? {
        var sum = 0
        var weightThree = true
        for scalar in digits.unicodeScalars.reversed() {
            guard let value = digitValue(scalar) else { return nil }
            sum += weightThree ? 3 * value : value
            weightThree.toggle()
        }
        return Character(String((10 - sum % 10) % 10))
    }

    /// Whether `key` (all digits, check digit last) carries the right check digit.
    public static func isValid<S: StringProtocol>(_ key: S) -> Bool {
        guard let last = key.last, key.count >= 2, let expected = compute(key.dropLast()) else { return false }
        return last == expected
    }

    /// `digits` followed by its check digit.
    public static func appended<S: StringProtocol>(to digits: S) -> String? {
        compute(digits).map { String(digits) + String($0) }
    }

    static func digitValue(_ scalar: Unicode.Scalar) -> Int? {
        guard scalar.value >= 0x30, scalar.value <= 0x39 else { return nil }
        return Int(scalar.value - 0x30)
    }

    static func allDigits<S: StringProtocol>(_ text: S) -> Bool {
        !text.isEmpty && text.unicodeScalars.allSatisfy { digitValue($0) != nil }
    }
}
