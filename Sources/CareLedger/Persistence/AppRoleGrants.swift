import Postgres

/// What the role that runs `careledger serve --no-migrate` may do to each table, and nothing more:
/// the log and the trails are append-only (SELECT, INSERT: not even a compromised server can
/// rewrite them), the ledger queue is also dequeued (DELETE), the objects whose state changes are
/// updated, and the migration record is read. Every table the migrations create must be here:
/// granting refuses a schema with a table it does not know, so a new table cannot be forgotten.
public enum AppRoleGrants {
    enum Access: String, CaseIterable, Sendable {
        case appendOnly = "SELECT, INSERT"
        case queue = "SELECT, INSERT, DELETE"
        case mutable = "SELECT, INSERT, UPDATE"
        case readOnly = "SELECT"
        /// Soft state each instance rewrites and prunes.
        case scratch = "SELECT, INSERT, UPDATE, DELETE"
    }

    static let tables: [String: Access] = [
        "ledger_entries": .appendOnly, "ledger_nodes": .appendOnly, "ledger_heads": .appendOnly, "ledger_keys": .appendOnly,
        "ledger_anchors": .appendOnly, "audit_batches": .appendOnly, "audit_events": .appendOnly, "claim_events": .appendOnly,
        "patient_identifiers": .appendOnly, "patient_custodians": .appendOnly, "idempotency_keys": .appendOnly,
        "allergies": .appendOnly, "dispenses": .appendOnly, "prescription_acknowledgements": .appendOnly,
        "epcis_events": .appendOnly, "epcis_error_declarations": .appendOnly, "supply_recalls": .appendOnly, "supply_item_holders": .appendOnly,
        "device_events": .appendOnly, "device_recalls": .appendOnly, "rfid_batches": .appendOnly, "telemetry_batches": .appendOnly,
        "telemetry_observations": .appendOnly, "device_alerts": .appendOnly,
        "ledger_queue": .queue,
        "organizations": .mutable, "api_keys": .mutable, "patients": .mutable, "consents": .mutable, "exchanges": .mutable,
        "claims": .mutable, "claim_rules": .mutable, "prescriptions": .mutable,
        "gs1_company_prefixes": .mutable, "gs1_locations": .mutable, "epcis_captures": .mutable, "supply_items": .mutable,
        "supply_shipments": .mutable, "supply_alerts": .mutable,
        "device_locations": .mutable, "device_readers": .mutable, "devices": .mutable, "device_state": .mutable, "rfid_sightings": .mutable, "rfid_unknown_tags": .mutable,
        "device_keys": .mutable,
        "med_sources": .readOnly, "med_ingredients": .readOnly, "med_ingredient_codes": .readOnly, "med_classes": .readOnly,
        "med_ingredient_classes": .readOnly, "med_products": .readOnly, "med_product_ingredients": .readOnly, "med_interactions": .readOnly,
        "med_controlled": .readOnly, "med_mme_factors": .readOnly,
        "schema_migrations": .readOnly,
        "limit_usage": .scratch,
    ]

    /// Why the grants could not be made.
    public struct Problem: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Grants `role` exactly the access above on the tables of the current schema (revoking
    /// anything else it had on them), in one transaction. Returns how many tables it covered.
    public static func grant(to role: String, on pool: PostgresPool) async throws -> Int {
        // The name goes into the statements as SQL text (GRANT takes no binds): only a plain
        // lower-case identifier is accepted, and then quoted.
        guard let first = role.utf8.first, (first >= 0x61 && first <= 0x7A) || first == 0x5F, role.utf8.count <= 63,
              role.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }) else {
            throw Problem(description: "the app role must be a lower-case identifier (a-z, 0-9, _), got '\(role)'")
        }
        return try await pool.withTransaction { transaction in
            guard try await !transaction.query("SELECT 1 AS found FROM pg_roles WHERE rolname = \(role)").isEmpty else {
                throw Problem(description: "role '\(role)' does not exist; create it first (CREATE ROLE \(role) LOGIN)")
            }
            // Quoted by the server itself, whatever the schema is called.
            let quotedSchema: String = try await transaction.query("SELECT quote_ident(current_schema()) AS name")[0].decode("name")
            let present = try await transaction.query("""
                SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename
                """).all.map { try $0.decode("tablename", as: String.self) }
            if let unknown = present.first(where: { tables[$0] == nil }) {
                throw Problem(description: "table '\(unknown)' has no grant for the app role; give it one in AppRoleGrants.tables")
            }
            let quotedRole = "\"\(role)\""
            try await transaction.query(PostgresQuery(unsafeSQL: "REVOKE ALL ON ALL TABLES IN SCHEMA \(quotedSchema) FROM \(quotedRole)"))
            try await transaction.query(PostgresQuery(unsafeSQL: "GRANT USAGE ON SCHEMA \(quotedSchema) TO \(quotedRole)"))
            for table in present {
                guard let access = tables[table] else { continue }
                try await transaction.query(PostgresQuery(unsafeSQL: "GRANT \(access.rawValue) ON \(quotedSchema).\"\(table)\" TO \(quotedRole)"))
            }
            // bigserial columns draw from their sequences.
            try await transaction.query(PostgresQuery(unsafeSQL: "GRANT USAGE ON ALL SEQUENCES IN SCHEMA \(quotedSchema) TO \(quotedRole)"))
            return present.count
        }
    }
}
