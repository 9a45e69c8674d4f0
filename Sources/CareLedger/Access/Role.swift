/// What a key may do is decided by its role; every key carries exactly one.
public enum Role: String, CaseIterable, Codable, Sendable {
    case admin, hospital, insurer, national, pharmacy, manufacturer, distributor, auditor, patient, device
}

/// What kind of party an organization is.
public enum OrganizationKind: String, CaseIterable, Codable, Sendable {
    case platform, hospital, insurer, national, pharmacy, manufacturer, distributor, auditor

    /// The roles a key of this kind of organization may carry: an insurer cannot mint hospital keys,
    /// and only the platform holds admin keys. Patient keys are issued by the organizations that
    /// register patients; device keys by those that own or make devices.
    var keyRoles: [Role] {
        switch self {
        case .platform: [.admin]
        case .hospital: [.hospital, .patient, .device]
        case .insurer: [.insurer]
        case .national: [.national, .patient]
        case .pharmacy: [.pharmacy]
        case .manufacturer: [.manufacturer, .device]
        case .distributor: [.distributor]
        case .auditor: [.auditor]
        }
    }
}
