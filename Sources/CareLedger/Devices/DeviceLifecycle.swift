/// Where a device is in its life. A device arrives `received`, circulates between `available`,
/// `in_use`, `cleaning` and `maintenance`, and ends `recalled`, `lost` or `retired`: nothing moves
/// a device out of those (a found device is registered again, with its history kept under its old id).
enum DeviceStatus: String, CaseIterable, Sendable {
    case received, available
    case inUse = "in_use"
    case cleaning, maintenance, recalled, lost, retired

    var isFinal: Bool { self == .recalled || self == .lost || self == .retired }
}

enum DeviceLifecycle {
    /// The moves the state machine allows, besides the final ones every live state allows.
    private static let circulation: [DeviceStatus: Set<DeviceStatus>] = [
        .received: [.available],
        .available: [.inUse, .cleaning, .maintenance],
        .inUse: [.available, .cleaning, .maintenance],
        .cleaning: [.available, .maintenance],
        .maintenance: [.available, .cleaning],
    ]

    static func allows(_ from: DeviceStatus, _ to: DeviceStatus) -> Bool {
        guard !from.isFinal else { return false }
        return to.isFinal || circulation[from]?.contains(to) == true
    }

    /// The states a device may move to from `from`, in declaration order (for the 409's answer).
    static func next(from: DeviceStatus) -> [DeviceStatus] {
        DeviceStatus.allCases.filter { allows(from, $0) }
    }
}
