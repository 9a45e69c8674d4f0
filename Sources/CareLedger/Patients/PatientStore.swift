import Postgres

/// The patients area's SQL.
struct PatientStore: Sendable {
    struct StoredPatient {
        let id: String
        let wrappedDataKey: [UInt8]?
        let resource: [UInt8]?
    }

    func create(id: String, wrappedDataKey: [UInt8], resource: [UInt8], orgId: String, on runner: some QueryRunner) async throws {
        try await runner.query("""
            INSERT INTO patients (id, wrapped_data_key, resource, registered_by)
            VALUES (\(id), \(PostgresBytes(wrappedDataKey)), \(PostgresBytes(resource)), \(orgId))
            """)
        try await addCustodian(patientId: id, orgId: orgId, on: runner)
    }

    func addCustodian(patientId: String, orgId: String, on runner: some QueryRunner) async throws {
        try await runner.query("""
            INSERT INTO patient_custodians (patient_id, org_id) VALUES (\(patientId), \(orgId)) ON CONFLICT DO NOTHING
            """)
    }

    /// Claims blind indexes for the patient; returns the other patient that already holds one of
    /// them, if any, and then claims none. Indexes the patient holds already are skipped; any other
    /// clash is left to the primary key, so two registrations racing for one identifier cannot both
    /// commit: the loser fails with a unique violation and is retried (a NOT EXISTS filter would
    /// instead let it commit a patient without the identifier).
    func claimIdentifiers(_ indexes: [[UInt8]], patientId: String, orgId: String, on runner: some QueryRunner) async throws -> String? {
        let rows = try await runner.query("""
            SELECT patient_id FROM patient_identifiers WHERE blind_index = ANY(\(PostgresArray(indexes.map { PostgresBytes($0) }))::bytea[])
            AND patient_id <> \(patientId) LIMIT 1
            """)
        if let existing = rows.first { return try existing.decode("patient_id") }
        try await runner.query("""
            INSERT INTO patient_identifiers (blind_index, patient_id, added_by)
            SELECT b, \(patientId), \(orgId) FROM unnest(\(PostgresArray(indexes.map { PostgresBytes($0) }))::bytea[]) AS b
            WHERE NOT EXISTS (SELECT 1 FROM patient_identifiers WHERE blind_index = b AND patient_id = \(patientId))
            """)
        return nil
    }

    func patient(byIndex index: [UInt8], on runner: some QueryRunner) async throws -> String? {
        let rows = try await runner.query("SELECT patient_id FROM patient_identifiers WHERE blind_index = \(PostgresBytes(index))")
        return try rows.first?.decode("patient_id")
    }

    func patient(_ id: String, on runner: some QueryRunner) async throws -> StoredPatient? {
        let rows = try await runner.query("SELECT id, wrapped_data_key, resource FROM patients WHERE id = \(id)")
        return try rows.first.map { row in
            StoredPatient(
                id: try row.decode("id"), wrappedDataKey: try row.decode("wrapped_data_key", as: PostgresBytes?.self)?.bytes,
                resource: try row.decode("resource", as: PostgresBytes?.self)?.bytes)
        }
    }

    /// The wrapped data keys of these patients; an erased patient maps to nil, an unknown one is absent.
    func wrappedDataKeys(_ ids: [String], on runner: some QueryRunner) async throws -> [String: [UInt8]?] {
        guard !ids.isEmpty else { return [:] }
        let rows = try await runner.query("SELECT id, wrapped_data_key FROM patients WHERE id = ANY(\(PostgresArray(ids))::text[])")
        var keys: [String: [UInt8]?] = [:]
        for row in rows.all { keys[try row.decode("id")] = .some(try row.decode("wrapped_data_key", as: PostgresBytes?.self)?.bytes) }
        return keys
    }

    /// Destroys the patient's data key (and the sealed resource): nothing sealed under it opens again.
    /// Returns false when there is no such patient or it was erased already.
    func erase(_ id: String, on runner: some QueryRunner) async throws -> Bool {
        let rows = try await runner.query("""
            UPDATE patients SET wrapped_data_key = NULL, resource = NULL, erased_at = now() WHERE id = \(id) AND erased_at IS NULL
            RETURNING id
            """)
        return !rows.isEmpty
    }

    func erasedCount(on runner: some QueryRunner) async throws -> Int {
        try await runner.query("SELECT count(*) AS n FROM patients WHERE erased_at IS NOT NULL")[0].decode("n", as: Int.self)
    }

    func isCustodian(orgId: String, patientId: String, on runner: some QueryRunner) async throws -> Bool {
        let rows = try await runner.query("SELECT 1 AS found FROM patient_custodians WHERE patient_id = \(patientId) AND org_id = \(orgId)")
        return !rows.isEmpty
    }
}
