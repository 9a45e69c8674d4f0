import HTTP

/// `GET /v1/patients/{patientId}/record` and `GET /v1/me/record`: the record index.
enum RecordRoutes {
    static func register(in api: inout APIRouteBuilder) {
        let service = RecordService(pool: api.access.pool)

        api.on(.get, "/v1/patients/{patientId}/record", .recordRead) { context in
            let patientId: String = try context.parameter("patientId")
            return try JSONBody.response(.ok, try await service.index(of: patientId, try Pagination(try context.query()), context.call))
        }

        api.on(.get, "/v1/me/record", .meRecord) { context in
            try JSONBody.response(.ok, try await service.ownIndex(try Pagination(try context.query()), context.call))
        }
    }
}
