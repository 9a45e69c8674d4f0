import HTTP

/// `/v1/patients`: registration, lookup by identifier, identifiers, reading a patient, erasure.
enum PatientRoutes {
    static func register(in api: inout APIRouteBuilder, keys: PatientKeys) {
        let service = PatientService(pool: api.access.pool, keys: keys)

        api.on(.post, "/v1/patients", .patientsCreate) { context in
            let registered = try await service.register(context.request.body, context.call)
            return try JSONBody.response(.created, Registered(id: registered.id, identifiers: registered.identifiers))
        }

        api.on(.get, "/v1/patients", .patientsRead) { context in
            guard let token = try context.query()["identifier"], let bar = token.firstIndex(of: "|"),
                  token.startIndex != bar, token.index(after: bar) != token.endIndex else {
                throw DomainError.invalid("Give identifier=system|value.")
            }
            let found = try await service.find(system: String(token[..<bar]), value: String(token[token.index(after: bar)...]), context.call)
            return .json(.ok, found)
        }

        api.on(.get, "/v1/patients/{patientId}", .patientsRead) { context in
            .json(.ok, try await service.read(try context.parameter("patientId"), context.call))
        }

        api.on(.post, "/v1/patients/{patientId}/identifiers", .patientsIdentify) { context in
            let id: String = try context.parameter("patientId")
            let body = try JSONBody.decode(NewIdentifier.self, from: context.request, fields: ["system", "value"])
            try await service.addIdentifier(to: id, system: body.system, value: body.value, context.call)
            return try JSONBody.response(.created, Registered(id: id, identifiers: 1))
        }

        // National systems, with the legal basis.
        api.on(.post, "/v1/patients/{patientId}/erase", .patientsErase) { context in
            let id: String = try context.parameter("patientId")
            let body = try JSONBody.decode(Erasure.self, from: context.request, fields: ["reason"])
            let already = try await service.erase(id, reason: body.reason, context.call)
            return try JSONBody.response(.ok, ErasureDone(id: id, status: "erased", alreadyErased: already))
        }
    }
}

private struct Registered: Encodable {
    let id: String
    let identifiers: Int
}

private struct Erasure: Decodable {
    let reason: String
}

private struct ErasureDone: Encodable {
    let id: String
    let status: String
    let alreadyErased: Bool
}

private struct NewIdentifier: Decodable {
    let system: String
    let value: String
}
