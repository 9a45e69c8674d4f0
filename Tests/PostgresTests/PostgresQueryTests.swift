import Foundation
import Postgres
import Testing
import TestSupport

@Suite struct PostgresQueryTests {
    @Test func interpolationBecomesBindsNeverSQL() {
        let name = "x'); DROP TABLE users; --"
        let limit = 5
        let query: PostgresQuery = "SELECT * FROM t WHERE name = \(name) LIMIT \(limit)"
        #expect(query.sql == "SELECT * FROM t WHERE name = $1 LIMIT $2")
        #expect(query.binds.map(\.text) == [name, "5"])
    }

    @Test func optionalNilIsNull() {
        let missing: String? = nil
        let query: PostgresQuery = "SELECT \(missing)"
        #expect(query.binds == [.null])
    }

    @Test func decodesEveryTypeIncludingNull() async throws {
        try await TestDatabase.withSchema { pool in
            let id = UUID()
            let rows = try await pool.query("""
                SELECT 'héllo'::text AS t, 42::int AS i, 9000000000000000000::bigint AS b, true AS yes,
                       false AS no, 1.5::float8 AS d, '\\x00ff10'::bytea AS raw, \(id)::uuid AS u,
                       '2026-11-25 12:34:56.789012+00'::timestamptz AS ts, '{"a": [1, 2]}'::jsonb AS j,
                       NULL::text AS missing, 'NaN'::float8 AS nan
                """)
            let row = try #require(rows.first)
            #expect(try row.decode("t", as: String.self) == "héllo")
            #expect(try row.decode("i", as: Int.self) == 42)
            #expect(try row.decode("b", as: Int64.self) == 9_000_000_000_000_000_000)
            #expect(try row.decode("yes", as: Bool.self) == true)
            #expect(try row.decode("no", as: Bool.self) == false)
            #expect(try row.decode("d", as: Double.self) == 1.5)
            #expect(try row.decode("nan", as: Double.self).isNaN)
            #expect(try row.decode("raw", as: PostgresBytes.self).bytes == [0x00, 0xFF, 0x10])
            #expect(try row.decode("u", as: UUID.self) == id)
            let timestamp = try row.decode("ts", as: Date.self)
            #expect(abs(timestamp.timeIntervalSince1970 - 1_795_610_096.789012) < 0.000_001)
            #expect(try row.decode("j", as: PostgresJSON.self).text == #"{"a": [1, 2]}"#)
            #expect(try row.decode("missing", as: String?.self) == nil)
            #expect(try row.decode("t", as: String?.self) == "héllo")
            #expect(throws: PostgresError.self) { try row.decode("missing", as: String.self) }
            #expect(throws: PostgresError.self) { try row.decode("t", as: Int.self) }
            #expect(throws: PostgresError.self) { try row.decode("no_such_column", as: String.self) }
        }
    }

    @Test func bindsRoundTripExactly() async throws {
        try await TestDatabase.withSchema { pool in
            try await pool.query("""
                CREATE TABLE samples (text text, raw bytea, at timestamptz, doc jsonb, n bigint, flag bool, x float8)
                """)
            let text = "quote ' backslash \\ dollar $1 newline \n emoji 🩺"
            let raw = PostgresBytes((0...255).map { UInt8($0) })
            let at = Date(timeIntervalSince1970: 1_795_610_096.123456)
            let doc = PostgresJSON(text: #"{"k": "v"}"#)
            try await pool.query("""
                INSERT INTO samples VALUES (\(text), \(raw), \(at), \(doc)::jsonb, \(Int64.min), \(true), \(-0.25))
                """)
            let row = try #require(try await pool.query("SELECT * FROM samples").first)
            #expect(try row.decode("text", as: String.self) == text)
            #expect(try row.decode("raw", as: PostgresBytes.self) == raw)
            #expect(abs(try row.decode("at", as: Date.self).timeIntervalSince(at)) < 0.000_001)
            #expect(try row.decode("doc", as: PostgresJSON.self).text == #"{"k": "v"}"#)
            #expect(try row.decode("n", as: Int64.self) == .min)
            #expect(try row.decode("flag", as: Bool.self))
            #expect(try row.decode("x", as: Double.self) == -0.25)
        }
    }

    @Test func byteArraysGoInBinaryAndRoundTripExactly() async throws {
        try await TestDatabase.withSchema { pool in
            let values: [PostgresBytes] = [PostgresBytes([]), PostgresBytes((0...255).map { UInt8($0) }), PostgresBytes(Array("\\x\"{},".utf8))]
            let array = PostgresArray(values)
            #expect(PostgresBind(array).binary != nil && PostgresBind(array).text == nil)
            let rows = try await pool.query("""
                SELECT b, n FROM unnest(\(array)::bytea[]) WITH ORDINALITY AS u(b, n) ORDER BY n
                """)
            #expect(try rows.all.map { try $0.decode("b", as: PostgresBytes.self) } == values)
            let empty = try await pool.query("SELECT cardinality(\(PostgresArray([PostgresBytes]()))::bytea[]) AS n")
            #expect(try empty.first?.decode("n", as: Int.self) == 0)
            // Text arrays keep the text format.
            #expect(PostgresBind(PostgresArray(["a", nil])).text == #"{"a",NULL}"#)
        }
    }

    @Test func serverErrorsCarrySQLStateAndConstraintButDescribeGenerically() async throws {
        try await TestDatabase.withSchema { pool in
            try await pool.query("CREATE TABLE orgs (id text CONSTRAINT orgs_pkey PRIMARY KEY)")
            try await pool.query("INSERT INTO orgs VALUES (\("secret-id"))")
            let error = await #expect(throws: PostgresError.self) {
                try await pool.query("INSERT INTO orgs VALUES (\("secret-id"))")
            }
            #expect(error?.kind == .server)
            #expect(error?.sqlState == "23505")
            #expect(error?.isUniqueViolation == true)
            #expect(error?.constraint == "orgs_pkey")
            #expect(error?.detail?.contains("secret-id") == true)
            #expect(error.map { String(describing: $0) } == "PostgresError(server, sqlState: 23505)")
            let syntax = await #expect(throws: PostgresError.self) { try await pool.query("SELEC 1") }
            #expect(syntax?.sqlState == "42601")
        }
    }

    @Test func affectedRowsAndMultipleRows() async throws {
        try await TestDatabase.withSchema { pool in
            try await pool.query("CREATE TABLE n (v int)")
            let insert = try await pool.query("INSERT INTO n SELECT generate_series(1, 5)")
            #expect(insert.affectedRows == 5)
            let rows = try await pool.query("SELECT v FROM n WHERE v > \(2) ORDER BY v")
            #expect(try rows.all.map { try $0.decode("v", as: Int.self) } == [3, 4, 5])
        }
    }

    /// A fragment keeps its values as binds and takes the statement's next numbers wherever it goes,
    /// nested too, so another store's insert composes without a value ever becoming SQL text.
    @Test func fragmentsComposeAndTheirValuesBecomeTheStatementsNextBinds() async throws {
        let inner: PostgresFragment = "SELECT \(7)::int AS n, \(Optional<String>.none)::text AS t"
        let outer: PostgresFragment = "WITH x AS (\(inner)) SELECT n + \(1) AS m, t FROM x"
        let query: PostgresQuery = "\(outer) WHERE n = \(7) AND \("it's")::text <> ''"
        #expect(query.sql == "WITH x AS (SELECT $1::int AS n, $2::text AS t) SELECT n + $3 AS m, t FROM x WHERE n = $4 AND $5::text <> ''")
        #expect(query.binds.map(\.text) == ["7", nil, "1", "7", "it's"])
        try await TestDatabase.withSchema { pool in
            let row = try #require(try await pool.query(query).first)
            #expect(try row.decode("m", as: Int.self) == 8 && row.decode("t", as: String?.self) == nil)
        }
    }
}
