/// Everything a caller can ask of the API, one case per kind of request. Each route declares its
/// action; the matrix below decides which roles may perform it.
public enum Action: String, CaseIterable, Sendable {
    case meRead = "me.read"
    case orgsCreate = "orgs.create"
    case orgsList = "orgs.list"
    case orgsRead = "orgs.read"
    case orgsUpdate = "orgs.update"
    case keysCreate = "keys.create"
    case keysList = "keys.list"
    case keysRevoke = "keys.revoke"
    case auditRead = "audit.read"
    case patientsCreate = "patients.create"
    case patientsRead = "patients.read"
    case patientsIdentify = "patients.identify"
    case patientsErase = "patients.erase"
    case consentsCreate = "consents.create"
    case consentsRead = "consents.read"
    case consentsRevoke = "consents.revoke"
    case exchangesSend = "exchanges.send"
    case exchangesRead = "exchanges.read"
    case recordRead = "record.read"
    case meRecord = "me.record"
    case meAccessLog = "me.access-log"
    case claimsSubmit = "claims.submit"
    case claimsRead = "claims.read"
    case claimsCancel = "claims.cancel"
    case claimsFeed = "claims.feed"
    case claimsAdjudicate = "claims.adjudicate"
    case claimsResponses = "claims.responses"
    case claimsRules = "claims.rules"
    case allergiesRecord = "allergies.record"
    case allergiesRead = "allergies.read"
    case prescriptionsCreate = "prescriptions.create"
    case prescriptionsCheck = "prescriptions.check"
    case prescriptionsRead = "prescriptions.read"
    case prescriptionsCancel = "prescriptions.cancel"
    case prescriptionsDispense = "prescriptions.dispense"
    case medicationsRead = "medications.read"
    case meMedications = "me.medications"
    case supplyBind = "supply.bind"
    case epcisCapture = "epcis.capture"
    case epcisRead = "epcis.read"
    case supplyVerify = "supply.verify"
    case supplyTrace = "supply.trace"
    case supplyAlerts = "supply.alerts"
    case supplyRecall = "supply.recall"
    case devicesRegister = "devices.register"
    case devicesRead = "devices.read"
    case devicesMove = "devices.move"
    case devicesRecall = "devices.recall"
    case devicesLocations = "devices.locations"
    case devicesRFID = "devices.rfid"
    case devicesKeys = "devices.keys"
    case devicesAlerts = "devices.alerts"
    case telemetryIngest = "telemetry.ingest"
    case telemetryRead = "telemetry.read"
    case telemetryProof = "telemetry.proof"
    case meTelemetry = "me.telemetry"
    case ledgerRead = "ledger.read"
    case ledgerAnchor = "ledger.anchor"
}

/// The one place that says which role may do what: data, not code spread over handlers. Admins run
/// the platform (organizations and keys) and see no patient data; organizations see only their own
/// organization record; the audit trail is for auditors and national health systems. The ledger holds
/// no PHI, so every role may read it; every organization but the platform may anchor documents.
public enum PermissionMatrix {
    private static let organizationRoles: Set<Role> = [.admin, .hospital, .insurer, .national, .pharmacy, .manufacturer, .distributor, .auditor]
    /// Those who make, move, dispense or regulate medicines; what an event shows is narrowed further
    /// to the organizations that held the pack (and regulators).
    private static let supplyChainRoles: Set<Role> = [.manufacturer, .distributor, .pharmacy, .hospital, .national]

    public static let allowed: [Action: Set<Role>] = [
        .meRead: Set(Role.allCases),
        .orgsCreate: [.admin],
        .orgsList: organizationRoles,
        .orgsRead: organizationRoles,
        .orgsUpdate: [.admin],
        .keysCreate: [.admin],
        .keysList: [.admin],
        .keysRevoke: [.admin],
        .auditRead: [.auditor, .national],
        .patientsCreate: [.hospital, .national],
        .patientsRead: [.hospital, .national, .insurer, .pharmacy],
        .patientsIdentify: [.hospital, .national],
        .patientsErase: [.national],
        .consentsCreate: [.hospital, .patient],
        .consentsRead: [.hospital, .national, .patient],
        .consentsRevoke: [.hospital, .patient],
        .exchangesSend: [.hospital, .national],
        .exchangesRead: [.hospital, .insurer, .national, .pharmacy],
        .recordRead: [.hospital, .insurer, .national, .pharmacy],
        .meRecord: [.patient],
        .meAccessLog: [.patient],
        .claimsSubmit: [.hospital],
        .claimsRead: [.hospital, .insurer],
        .claimsCancel: [.hospital],
        .claimsFeed: [.insurer],
        .claimsAdjudicate: [.insurer],
        .claimsResponses: [.hospital],
        .claimsRules: [.insurer],
        .allergiesRecord: [.hospital, .pharmacy, .patient],
        .allergiesRead: [.hospital, .pharmacy, .patient],
        .prescriptionsCreate: [.hospital],
        .prescriptionsCheck: [.hospital],
        .prescriptionsRead: [.hospital, .pharmacy, .patient],
        .prescriptionsCancel: [.hospital],
        .prescriptionsDispense: [.pharmacy],
        .medicationsRead: [.hospital, .pharmacy],
        .meMedications: [.patient],
        .supplyBind: [.admin],
        .epcisCapture: supplyChainRoles.subtracting([.national]),
        .epcisRead: supplyChainRoles,
        .supplyVerify: supplyChainRoles,
        .supplyTrace: supplyChainRoles,
        .supplyAlerts: supplyChainRoles,
        .supplyRecall: [.manufacturer, .national],
        .devicesRegister: [.hospital, .manufacturer],
        .devicesRead: [.hospital, .manufacturer, .national],
        .devicesMove: [.hospital],
        .devicesRecall: [.manufacturer, .national],
        .devicesLocations: [.hospital],
        .devicesRFID: [.hospital],
        .devicesKeys: [.hospital],
        .devicesAlerts: [.hospital, .manufacturer, .national],
        .telemetryIngest: [.device, .hospital],
        .telemetryRead: [.hospital, .patient],
        .telemetryProof: [.hospital, .patient, .device],
        .meTelemetry: [.patient],
        .ledgerRead: Set(Role.allCases),
        .ledgerAnchor: organizationRoles.subtracting([.admin]),
    ]

    /// Whether `role` may perform `action`; an action missing from the matrix is allowed to no one.
    public static func permits(_ role: Role, _ action: Action) -> Bool {
        allowed[action]?.contains(role) ?? false
    }

    /// The roles allowed `action`, in declaration order (for documentation and openapi.yaml).
    public static func roles(for action: Action) -> [Role] {
        Role.allCases.filter { permits($0, action) }
    }

    /// The matrix as a Markdown table, actions by roles; README.md carries exactly this text.
    public static var markdownTable: String {
        var lines = ["| action | " + Role.allCases.map { $0.rawValue }.joined(separator: " | ") + " |"]
        lines.append("|---|" + String(repeating: "---|", count: Role.allCases.count))
        for action in Action.allCases {
            lines.append("| `\(action.rawValue)` | " + Role.allCases.map { permits($0, action) ? "yes" : "" }.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }
}
