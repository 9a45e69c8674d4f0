import FoundationEssentials
import Postgres

/// An allergy as stored (its document still sealed).
struct StoredAllergy: Sendable {
    let id: String
    let patientId: String
    let recordedBy: String
    let sealedDocument: [UInt8]
    let documentHash: String
    let queueId: Int64
    let createdAt: Date
}

/// A prescription as stored: its state in clear, its documents sealed.
struct StoredPrescription: Sendable {
    let id: String
    let patientId: String
    let prescriberOrg: String
    let prescriber: String
    let dispenser: String?
    let active: Bool
    let fillsAllowed: Int
    var fills: Int
    let fillQuantity: FHIRQuantity?
    let validFrom: Date?
    let validUntil: Date?
    let sealedDocument: [UInt8]
    let sealedDecision: [UInt8]
    /// The findings as the 201 answered them (sealed), so that a replay answers the same.
    var sealedAnswer: [UInt8]? = nil
    let decisionHash: String
    let knowledgeVersion: String
    let queueId: Int64
    let createdAt: Date
    var cancelledAt: Date? = nil
    var cancellationHash: String? = nil
    var sealedCancellation: [UInt8]? = nil
    var cancelQueueId: Int64? = nil
}

/// One fill of a prescription.
struct StoredDispense: Sendable {
    let queueId: Int64
    let prescriptionId: String
    let fillNumber: Int
    let pharmacyOrg: String
    let patientId: String
    let quantity: Decimal
    let sealedDocument: [UInt8]
    let documentHash: String
    let createdAt: Date
}

/// What seals authenticate besides the bytes: which object and which document of it.
enum PrescriptionSeal {
    static func allergy(_ id: String) -> [UInt8] { Array("allergy:\(id)".utf8) }
    static func request(_ id: String) -> [UInt8] { Array("prescription:\(id):request".utf8) }
    static func decision(_ id: String) -> [UInt8] { Array("prescription:\(id):decision".utf8) }
    static func answer(_ id: String) -> [UInt8] { Array("prescription:\(id):answer".utf8) }
    static func cancellation(_ id: String) -> [UInt8] { Array("prescription:\(id):cancelled".utf8) }
    static func dispense(_ id: String, fill: Int) -> [UInt8] { Array("prescription:\(id):fill:\(fill)".utf8) }
}

/// The SQL of allergies, prescriptions, their fills and the prescribers' acknowledgements.
struct PrescriptionStore: Sendable {
    static let allergyType = "allergy.recorded"
    static let createdType = "prescription.created"
    static let cancelledType = "prescription.cancelled"
    static let dispensedType = "prescription.dispensed"

    /// How many of a patient's prescriptions a check reads, newest first: far more than anyone takes.
    static let recordLimit = 1000

    private static let prescriptionColumns: StaticString = """
        id, patient_id, prescriber_org, prescriber, dispenser, active, fills_allowed, fills, fill_quantity::text AS fill_quantity, fill_unit,
        valid_from, valid_until, document, decision, decision_hash, knowledge_version, queue_id, created_at, cancelled_at, cancellation,
        cancellation_hash, cancel_queue_id
        """
    private static let dispenseColumns: StaticString = """
        queue_id, prescription_id, fill_number, pharmacy_org, patient_id, quantity::text AS quantity, document, document_hash, created_at
        """

    // MARK: Allergies

    /// The allergy, its ledger queue row and its audit event, in one statement.
    func insert(_ allergy: StoredAllergy, event: AuditEvent, on runner: some QueryRunner) async throws -> Int64 {
        let item = LedgerItem(type: Self.allergyType, actor: allergy.recordedBy, ref: allergy.id, hash: allergy.documentHash)
        let rows = try await runner.query("""
            WITH queued AS (\(LedgerStore.queueAppend([item]))),
            audited AS (\(AuditStore.insert([event])))
            INSERT INTO allergies (id, patient_id, recorded_by, document, document_hash, queue_id, created_at)
            SELECT \(allergy.id), \(allergy.patientId), \(allergy.recordedBy), \(PostgresBytes(allergy.sealedDocument)), \(allergy.documentHash),
                   queued.id, \(allergy.createdAt)
            FROM queued
            RETURNING queue_id
            """)
        guard let row = rows.first else { throw PostgresError(.decoding, message: "the allergy insert returned no queue id") }
        return try row.decode("queue_id", as: Int64.self)
    }

    func allergies(patientId: String, on runner: some QueryRunner) async throws -> [StoredAllergy] {
        try await runner.query("""
            SELECT id, patient_id, recorded_by, document, document_hash, queue_id, created_at FROM allergies
            WHERE patient_id = \(patientId) ORDER BY id LIMIT \(Self.recordLimit)
            """).all.map(Self.allergy)
    }

    func allAllergies(on runner: some QueryRunner) async throws -> [StoredAllergy] {
        try await runner.query("SELECT id, patient_id, recorded_by, document, document_hash, queue_id, created_at FROM allergies ORDER BY id").all.map(Self.allergy)
    }

    // MARK: Prescriptions

    /// One prescription to create: the row, the prescriber's acknowledgements, its audit event and
    /// its idempotency key, if any.
    struct Create: Sendable {
        let prescription: StoredPrescription
        let acknowledgements: [[UInt8]]
        let event: AuditEvent
        let idempotency: Idempotency?
    }

    /// Writes prescriptions, each with its `prescription.created` queue row, audit event,
    /// acknowledgements and idempotency key, as one statement (the queue, audit and idempotency
    /// inserts are their owners' fragments): prescriptions that arrive together share one round
    /// trip and one commit. Returns each one's queue id, in order.
    func create(_ batch: [Create], on runner: some QueryRunner) async throws -> [Int64] {
        let rows = batch.map { $0.prescription }
        let items = rows.map { LedgerItem(type: Self.createdType, actor: $0.prescriberOrg, ref: $0.id, hash: $0.decisionHash) }
        let keys = batch.map { (orgId: $0.prescription.prescriberOrg, idempotency: $0.idempotency, resourceId: $0.prescription.id) }
        let acknowledgements = batch.flatMap { create in create.acknowledgements.map { (create.prescription.id, $0) } }
        let result = try await runner.query("""
            WITH input AS (
                SELECT * FROM unnest(
                    \(PostgresArray(rows.map { $0.id }))::text[], \(PostgresArray(rows.map { $0.patientId }))::text[],
                    \(PostgresArray(rows.map { $0.prescriberOrg }))::text[], \(PostgresArray(rows.map { $0.prescriber }))::text[],
                    \(PostgresArray(rows.map { $0.dispenser }))::text[], \(PostgresArray(rows.map { Optional("\($0.active)") }))::text[]::boolean[],
                    \(PostgresArray(rows.map { Optional("\($0.fillsAllowed)") }))::text[]::integer[],
                    \(PostgresArray(rows.map { $0.fillQuantity.map { "\($0.value)" } }))::text[]::numeric[], \(PostgresArray(rows.map { $0.fillQuantity?.unit }))::text[],
                    \(PostgresArray(rows.map { $0.validFrom.map(Timestamp.format) }))::text[]::timestamptz[],
                    \(PostgresArray(rows.map { $0.validUntil.map(Timestamp.format) }))::text[]::timestamptz[],
                    \(PostgresArray(rows.map { PostgresBytes($0.sealedDocument) }))::bytea[], \(PostgresArray(rows.map { PostgresBytes($0.sealedDecision) }))::bytea[],
                    \(PostgresArray(rows.map { PostgresBytes($0.sealedAnswer ?? []) }))::bytea[],
                    \(PostgresArray(rows.map { $0.decisionHash }))::text[], \(PostgresArray(rows.map { $0.knowledgeVersion }))::text[],
                    \(PostgresArray(rows.map { $0.createdAt }))::timestamptz[])
                    WITH ORDINALITY AS i(id, patient_id, prescriber_org, prescriber, dispenser, active, fills_allowed, fill_quantity, fill_unit,
                                         valid_from, valid_until, document, decision, answer, decision_hash, knowledge_version, created_at, position)),
            idempotency AS (\(IdempotencyStore.insert(keys))),
            queued AS (\(LedgerStore.queueAppend(items))),
            audited AS (\(AuditStore.insert(batch.map { $0.event }))),
            stored AS (
                INSERT INTO prescriptions (id, patient_id, prescriber_org, prescriber, dispenser, active, fills_allowed, fill_quantity, fill_unit,
                                           valid_from, valid_until, document, decision, answer, decision_hash, knowledge_version, queue_id, created_at)
                SELECT i.id, i.patient_id, i.prescriber_org, i.prescriber, i.dispenser, i.active, i.fills_allowed, i.fill_quantity, i.fill_unit,
                       i.valid_from, i.valid_until, i.document, i.decision, NULLIF(i.answer, ''::bytea), i.decision_hash, i.knowledge_version, q.id, i.created_at
                FROM input i JOIN queued q ON q.ref = i.id
                RETURNING 1),
            acknowledged AS (
                INSERT INTO prescription_acknowledgements (patient_id, prescriber, finding, prescription_id, acknowledged_at)
                SELECT i.patient_id, i.prescriber, a.finding, i.id, i.created_at
                FROM unnest(\(PostgresArray(acknowledgements.map { Optional($0.0) }))::text[], \(PostgresArray(acknowledgements.map { PostgresBytes($0.1) }))::bytea[])
                     AS a(prescription_id, finding)
                JOIN input i ON i.id = a.prescription_id)
            SELECT q.id FROM input i JOIN queued q ON q.ref = i.id ORDER BY i.position
            """)
        return try result.all.map { try $0.decode("id", as: Int64.self) }
    }

    func prescription(_ id: String, lock: Bool = false, on runner: some QueryRunner) async throws -> StoredPrescription? {
        let rows = lock
            ? try await runner.query("SELECT \(sql: Self.prescriptionColumns) FROM prescriptions WHERE id = \(id) FOR UPDATE")
            : try await runner.query("SELECT \(sql: Self.prescriptionColumns) FROM prescriptions WHERE id = \(id)")
        return try rows.first.map(Self.prescription)
    }

    /// The findings a prescription's 201 answered, sealed; nil for one written before they were kept.
    func sealedAnswer(of id: String, on runner: some QueryRunner) async throws -> [UInt8]? {
        try await runner.query("SELECT answer FROM prescriptions WHERE id = \(id)").first?.decode("answer", as: PostgresBytes?.self)?.bytes
    }

    /// The patient's prescriptions, newest first.
    func prescriptions(patientId: String, on runner: some QueryRunner) async throws -> [StoredPrescription] {
        try await runner.query("""
            SELECT \(sql: Self.prescriptionColumns) FROM prescriptions WHERE patient_id = \(patientId)
            ORDER BY created_at DESC, id LIMIT \(Self.recordLimit)
            """).all.map(Self.prescription)
    }

    func allPrescriptions(on runner: some QueryRunner) async throws -> [StoredPrescription] {
        try await runner.query("SELECT \(sql: Self.prescriptionColumns) FROM prescriptions ORDER BY id").all.map(Self.prescription)
    }

    func cancel(_ id: String, at time: Date, sealed: [UInt8], hash: String, actor: String, event: AuditEvent, on runner: some QueryRunner) async throws -> Int64 {
        let item = LedgerItem(type: Self.cancelledType, actor: actor, ref: id, hash: hash)
        let rows = try await runner.query("""
            WITH queued AS (\(LedgerStore.queueAppend([item]))),
            audited AS (\(AuditStore.insert([event])))
            UPDATE prescriptions SET cancelled_at = \(time), cancellation = \(PostgresBytes(sealed)), cancellation_hash = \(hash),
                   cancel_queue_id = queued.id
            FROM queued WHERE prescriptions.id = \(id) AND cancelled_at IS NULL
            RETURNING cancel_queue_id
            """)
        guard let row = rows.first else { throw PostgresError(.decoding, message: "the cancellation changed nothing") }
        return try row.decode("cancel_queue_id", as: Int64.self)
    }

    // MARK: Fills

    /// The fill, its queue row and audit event, and the prescription's fill count, in one
    /// statement; the caller holds the prescription's row lock.
    func dispense(_ dispense: StoredDispense, actor: String, event: AuditEvent, idempotency: Idempotency?, on runner: some QueryRunner) async throws -> Int64 {
        let item = LedgerItem(type: Self.dispensedType, actor: actor, ref: dispense.prescriptionId, hash: dispense.documentHash)
        let rows = try await runner.query("""
            WITH idempotency AS (\(IdempotencyStore.insert([(dispense.pharmacyOrg, idempotency, "\(dispense.prescriptionId)#\(dispense.fillNumber)")]))),
            queued AS (\(LedgerStore.queueAppend([item]))),
            audited AS (\(AuditStore.insert([event]))),
            counted AS (UPDATE prescriptions SET fills = \(dispense.fillNumber) WHERE id = \(dispense.prescriptionId) RETURNING id)
            INSERT INTO dispenses (queue_id, prescription_id, fill_number, pharmacy_org, patient_id, quantity, document, document_hash, created_at)
            SELECT queued.id, counted.id, \(dispense.fillNumber), \(dispense.pharmacyOrg), \(dispense.patientId), \("\(dispense.quantity)")::numeric,
                   \(PostgresBytes(dispense.sealedDocument)), \(dispense.documentHash), \(dispense.createdAt)
            FROM queued, counted
            RETURNING queue_id
            """)
        guard let row = rows.first else { throw PostgresError(.decoding, message: "the fill insert returned no queue id") }
        return try row.decode("queue_id", as: Int64.self)
    }

    func dispenses(prescriptionIds: [String], on runner: some QueryRunner) async throws -> [StoredDispense] {
        guard !prescriptionIds.isEmpty else { return [] }
        return try await runner.query("""
            SELECT \(sql: Self.dispenseColumns) FROM dispenses WHERE prescription_id = ANY(\(PostgresArray(prescriptionIds.map(Optional.init)))::text[])
            ORDER BY prescription_id, fill_number
            """).all.map(Self.dispense)
    }

    func dispense(prescriptionId: String, fill: Int, on runner: some QueryRunner) async throws -> StoredDispense? {
        try await runner.query("""
            SELECT \(sql: Self.dispenseColumns) FROM dispenses WHERE prescription_id = \(prescriptionId) AND fill_number = \(fill)
            """).first.map(Self.dispense)
    }

    func allDispenses(on runner: some QueryRunner) async throws -> [StoredDispense] {
        try await runner.query("SELECT \(sql: Self.dispenseColumns) FROM dispenses ORDER BY queue_id").all.map(Self.dispense)
    }

    // MARK: What a check reads

    /// A prescription as the checks see it before its document: who, when, and whether cancelled.
    struct CheckRow: Sendable {
        let id: String
        let prescriberOrg: String
        let prescriber: String
        let createdAt: Date
        let cancelled: Bool
    }

    /// Everything a check reads about the patient before the documents, in one statement: the
    /// prescriptions (newest first), who filled them and when, the allergies, and when this
    /// prescriber acknowledged which findings (each kind within its limit).
    struct CheckInputs: Sendable {
        var prescriptions: [CheckRow] = []
        var fills: [(prescriptionId: String, pharmacy: String, at: Date)] = []
        var allergies: [(id: String, recordedBy: String)] = []
        var acknowledgements: [[UInt8]: (at: Date, prescription: String)] = [:]
    }

    func checkInputs(patientId: String, prescriber: String, on runner: some QueryRunner) async throws -> CheckInputs {
        let rows = try await runner.query("""
            SELECT 'prescription' AS kind, id, prescriber_org AS org, prescriber, created_at AS at, cancelled_at IS NOT NULL AS cancelled,
                   NULL::bytea AS finding
            FROM (SELECT * FROM prescriptions WHERE patient_id = \(patientId) ORDER BY created_at DESC, id LIMIT \(Self.recordLimit)) AS p
            UNION ALL
            SELECT 'fill', prescription_id, pharmacy_org, NULL, created_at, false, NULL
            FROM (SELECT * FROM dispenses WHERE patient_id = \(patientId) ORDER BY created_at DESC LIMIT 10000) AS d
            UNION ALL
            SELECT 'allergy', id, recorded_by, NULL, created_at, false, NULL
            FROM (SELECT * FROM allergies WHERE patient_id = \(patientId) ORDER BY id LIMIT \(Self.recordLimit)) AS a
            UNION ALL
            SELECT 'acknowledgement', prescription_id, NULL, NULL, acknowledged_at, false, finding
            FROM (SELECT * FROM prescription_acknowledgements WHERE patient_id = \(patientId) AND prescriber = \(prescriber)
                  ORDER BY acknowledged_at DESC LIMIT 10000) AS k
            """)
        var inputs = CheckInputs()
        for row in rows.all {
            let id: String = try row.decode("id"), at = try row.decode("at", as: Date.self)
            switch try row.decode("kind", as: String.self) {
            case "prescription":
                inputs.prescriptions.append(CheckRow(id: id, prescriberOrg: try row.decode("org"), prescriber: try row.decode("prescriber"),
                                                     createdAt: at, cancelled: try row.decode("cancelled")))
            case "fill":
                inputs.fills.append((id, try row.decode("org"), at))
            case "allergy":
                inputs.allergies.append((id, try row.decode("org")))
            default:
                let finding = try row.bytes("finding")
                if inputs.acknowledgements[finding].map({ $0.at < at }) ?? true { inputs.acknowledgements[finding] = (at, id) }
            }
        }
        inputs.prescriptions.sort { ($0.createdAt, $1.id) > ($1.createdAt, $0.id) }
        return inputs
    }

    /// The sealed MedicationRequests of `ids`.
    func requestDocuments(_ ids: [String], on runner: some QueryRunner) async throws -> [String: [UInt8]] {
        try await documents("SELECT id, document FROM prescriptions WHERE id = ANY(\(PostgresArray(ids.map(Optional.init)))::text[])", ids, on: runner)
    }

    func allergyDocuments(_ ids: [String], on runner: some QueryRunner) async throws -> [String: [UInt8]] {
        try await documents("SELECT id, document FROM allergies WHERE id = ANY(\(PostgresArray(ids.map(Optional.init)))::text[])", ids, on: runner)
    }

    private func documents(_ query: PostgresQuery, _ ids: [String], on runner: some QueryRunner) async throws -> [String: [UInt8]] {
        guard !ids.isEmpty else { return [:] }
        var documents: [String: [UInt8]] = [:]
        for row in try await runner.query(query).all { documents[try row.decode("id")] = try row.bytes("document") }
        return documents
    }

    // MARK: Rows

    private static func allergy(_ row: PostgresRow) throws -> StoredAllergy {
        StoredAllergy(id: try row.decode("id"), patientId: try row.decode("patient_id"), recordedBy: try row.decode("recorded_by"),
                      sealedDocument: try row.bytes("document"), documentHash: try row.decode("document_hash"),
                      queueId: try row.decode("queue_id", as: Int64.self), createdAt: try row.decode("created_at", as: Date.self))
    }

    private static func prescription(_ row: PostgresRow) throws -> StoredPrescription {
        let unit = try row.decode("fill_unit", as: String?.self)
        let quantity = try row.decode("fill_quantity", as: String?.self).flatMap { Decimal(string: $0) }.map { FHIRQuantity(value: $0, unit: unit) }
        return StoredPrescription(
            id: try row.decode("id"), patientId: try row.decode("patient_id"), prescriberOrg: try row.decode("prescriber_org"),
            prescriber: try row.decode("prescriber"), dispenser: try row.decode("dispenser", as: String?.self), active: try row.decode("active"),
            fillsAllowed: try row.decode("fills_allowed", as: Int.self), fills: try row.decode("fills", as: Int.self),
            fillQuantity: quantity,
            validFrom: try row.decode("valid_from", as: Date?.self), validUntil: try row.decode("valid_until", as: Date?.self),
            sealedDocument: try row.bytes("document"), sealedDecision: try row.bytes("decision"), decisionHash: try row.decode("decision_hash"),
            knowledgeVersion: try row.decode("knowledge_version"), queueId: try row.decode("queue_id", as: Int64.self),
            createdAt: try row.decode("created_at", as: Date.self), cancelledAt: try row.decode("cancelled_at", as: Date?.self),
            cancellationHash: try row.decode("cancellation_hash", as: String?.self),
            sealedCancellation: try row.decode("cancellation", as: PostgresBytes?.self)?.bytes,
            cancelQueueId: try row.decode("cancel_queue_id", as: Int64?.self))
    }

    private static func dispense(_ row: PostgresRow) throws -> StoredDispense {
        guard let quantity = Decimal(string: try row.decode("quantity", as: String.self)) else {
            throw PostgresError(.decoding, message: "bad fill quantity")
        }
        return StoredDispense(
            queueId: try row.decode("queue_id", as: Int64.self), prescriptionId: try row.decode("prescription_id"),
            fillNumber: try row.decode("fill_number", as: Int.self), pharmacyOrg: try row.decode("pharmacy_org"), patientId: try row.decode("patient_id"),
            quantity: quantity, sealedDocument: try row.bytes("document"), documentHash: try row.decode("document_hash"),
            createdAt: try row.decode("created_at", as: Date.self))
    }
}
