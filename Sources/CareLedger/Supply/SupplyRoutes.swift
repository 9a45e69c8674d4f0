import FoundationEssentials
import GS1
import HTTP
import Ledger
import Telemetry

/// `/v1/epcis/` (capture and query as the EPCIS 2.0 REST binding has them) and `/v1/supply/`
/// (GS1 key bindings, verification in our shape and the Lightweight Messaging shape, traces,
/// alerts, recalls).
enum SupplyRoutes {
    static let epcisVersion = "2.0.0"
    static let cbvVersion = "2.0.0"
    static let notAcceptable = HTTPStatus(code: 406, reasonPhrase: "Not Acceptable")

    static func register(in api: inout APIRouteBuilder, ledger: LedgerService, settings: SupplySettings) {
        let service = SupplyService(pool: api.access.pool, ledger: ledger, settings: settings)

        api.on(.post, "/v1/supply/company-prefixes", .supplyBind) { context in
            let body = try JSONBody.parse(context.request, fields: ["organization", "prefix"])
            guard let org = body["organization"]?.stringValue, let prefix = body["prefix"]?.stringValue else {
                throw DomainError.invalid("'organization' and 'prefix' are required strings.")
            }
            try await service.bindPrefix(prefix, to: org, context.call)
            return try JSONBody.response(.created, Binding(organization: org, prefix: prefix, gln: nil, name: nil))
        }

        api.on(.post, "/v1/supply/locations", .supplyBind) { context in
            let body = try JSONBody.parse(context.request, fields: ["organization", "gln", "name"])
            guard let org = body["organization"]?.stringValue, let gln = body["gln"]?.stringValue, let name = body["name"]?.stringValue else {
                throw DomainError.invalid("'organization', 'gln' and 'name' are required strings.")
            }
            try await service.bindLocation(gln, to: org, name: name, context.call)
            return try JSONBody.response(.created, Binding(organization: org, prefix: nil, gln: gln, name: name))
        }

        api.on(.post, "/v1/epcis/capture", .epcisCapture) { context in
            try checkVersions(context.request)
            let behaviour = try errorBehaviour(context.request)
            let value = try JSONBody.parse(context.request)
            let events: [EPCISEvent]
            do {
                events = try EPCISReader.read(value)
            } catch let problem as EPCISProblem {
                throw DomainError.invalidResource(path: problem.path, problem: problem.message)
            }
            let result = try await service.capture(events, document: context.request.body, context: EPCISContext().adding(contextOf: value),
                                                   behaviour: behaviour, idempotency: try Idempotency.of(context.request), context.call)
            var response = Response.json(.accepted, try JSONBody.object(CaptureView(result.job, alerts: result.alerts),
                                                                        adding: [("errors", result.job.errors)]))
            response.headers.add(name: "Location", value: "/v1/epcis/capture/\(result.job.id)")
            return epcisHeaders(response)
        }

        api.on(.get, "/v1/epcis/capture/{captureID}", .epcisCapture) { context in
            let job = try await service.captureJob(try context.parameter("captureID"), context.call)
            return epcisHeaders(.json(.ok, try JSONBody.object(CaptureView(job, alerts: nil), adding: [("errors", job.errors)])))
        }

        api.on(.get, "/v1/epcis/events", .epcisRead) { context in
            try checkVersions(context.request)
            let query = try eventQuery(try context.query())
            let (events, next) = try await service.events(query, context.call)
            var response = Response.json(.ok, try queryDocument(events, declarations: try await service.declarations(events)))
            if let next {
                let link = nextLink(try context.query(), token: next)
                response.headers.add(name: "Link", value: "<\(link)>; rel=\"next\"")
                response.headers.add(name: "GS1-Next-Page-Token", value: String(next))
            }
            return epcisHeaders(response)
        }

        api.on(.get, "/v1/epcis/events/{eventID}", .epcisRead) { context in
            let event = try await service.event(try context.parameter("eventID"), context.call)
            let declarations = try await service.declarations([event])
            return epcisHeaders(.json(.ok, eventJSON(event, declaration: declarations[event.hashID])))
        }

        api.on(.get, "/v1/epcis/events/{eventID}/proof", .epcisRead) { context in
            try JSONBody.response(.ok, Page(items: try await service.proof(try context.parameter("eventID"), context.call), next: nil))
        }

        api.on(.get, "/v1/supply/verify", .supplyVerify) { context in
            let query = try context.query()
            guard let id = query["id"], !id.isEmpty else { throw DomainError.invalid("'id' names the pack: an SGTIN URN, a GS1 Digital Link or a GS1 element string.") }
            let today = GS1Date.today
            let pack = try scanned(id, year: today.year)
            let expiry = try query["exp"].map { try gs1($0, year: today.year) }
            let result = try await service.verify(pack, lot: query["lot"], expiry: expiry, today: today, context.call)
            return try JSONBody.response(.ok, VerificationView(result))
        }

        api.on(.get, "/v1/supply/verify/gtin/{gtin}/lot/{lot}/ser/{serial}", .supplyVerify) { context in
            let query = try context.query()
            let today = GS1Date.today
            let gtin: String = try context.parameter("gtin"), lot: String = try context.parameter("lot"), serial: String = try context.parameter("serial")
            let key: PackKey
            do { key = try PackKey(gtin: try GTIN(gtin), serial: serial) } catch let error as GS1IdentifierError { throw DomainError.invalidResource(path: "gtin/ser", problem: error.message) }
            let expiry = try query["exp"].map { try gs1($0, year: today.year) }
            let pack = try scanned(key.digitalLink, year: today.year)
            let result = try await service.verify(pack, lot: lot, expiry: expiry, today: today, context.call)
            return try JSONBody.response(.ok, LightweightVerification(result, corrUUID: query["corrUUID"], requester: query["reqGLN"]))
        }

        api.on(.get, "/v1/supply/packs/{gtin}/{serial}/trace", .supplyTrace) { context in
            let gtin: String = try context.parameter("gtin"), serial: String = try context.parameter("serial")
            let key: PackKey
            do { key = try PackKey(gtin: try GTIN(gtin), serial: serial) } catch let error as GS1IdentifierError { throw DomainError.invalidResource(path: "gtin/serial", problem: error.message) }
            let (item, events) = try await service.trace(key, context.call)
            var history: [[UInt8]] = []
            for event in events {
                let receipts = try await ledger.receipts(queueIds: [event.queueId])
                history.append(try JSONBody.object(TraceStep(event, receipt: receipts?.first), adding: [("event", eventJSON(event, declaration: nil))]))
            }
            return .json(.ok, try JSONBody.object(PackView(item), adding: [("history", Array("[".utf8) + Array(history.joined(separator: [UInt8(ascii: ",")])) + Array("]".utf8))]))
        }

        api.on(.get, "/v1/supply/alerts", .supplyAlerts) { context in
            try await service.raiseOverdueShipments()
            let page = try await service.alerts(try LedgerFeed(try context.query()), context.call)
            return try JSONBody.page(encodedItems: try page.shown.map { try JSONBody.encoded(AlertView($0.alert, seq: $0.seq)) }, next: page.next, cursor: .some(page.cursor))
        }

        api.on(.post, "/v1/supply/alerts/{alertId}/resolve", .supplyAlerts) { context in
            let body = try JSONBody.parse(context.request, fields: ["resolution", "reason"])
            guard let resolution = body["resolution"]?.stringValue, let reason = body["reason"]?.stringValue else {
                throw DomainError.invalid("'resolution' (cleared or illegitimate) and 'reason' are required.")
            }
            let alert = try await service.resolve(try context.parameter("alertId"), resolution: resolution, reason: reason, context.call)
            return try JSONBody.response(.ok, AlertView(alert, seq: nil))
        }

        api.on(.post, "/v1/supply/recalls", .supplyRecall) { context in
            let body = try JSONBody.parse(context.request, fields: ["gtin", "lots", "reason"])
            guard let gtinText = body["gtin"]?.stringValue, case .array(let lotValues)? = body["lots"], let reason = body["reason"]?.stringValue else {
                throw DomainError.invalid("'gtin', 'lots' and 'reason' are required.")
            }
            let gtin: GTIN
            do { gtin = try GTIN(gtinText) } catch let error as GS1IdentifierError { throw DomainError.invalidResource(path: "gtin", problem: error.message) }
            let lots = lotValues.compactMap { $0.stringValue }
            guard lots.count == lotValues.count else { throw DomainError.invalid("'lots' must be strings.") }
            let recall = try await service.recall(gtin: gtin, lots: lots, reason: reason, context.call)
            return try JSONBody.response(.created, RecallView(id: recall.id, gtin: gtin.digits, lots: lots, affectedPacks: recall.affected,
                                                             ledger: recall.entry.map(LedgerRef.init)))
        }
    }

    static func epcisHeaders(_ response: Response) -> Response {
        var response = response
        response.headers.replaceOrAdd(name: "GS1-EPCIS-Version", value: epcisVersion)
        response.headers.replaceOrAdd(name: "GS1-CBV-Version", value: cbvVersion)
        return response
    }

    /// Clients name the versions they speak; we speak EPCIS 2.0 and CBV 2.0.
    static func checkVersions(_ request: Request) throws {
        if let version = request.headers.first(name: "GS1-EPCIS-Version"), !version.hasPrefix("2.0") {
            throw HTTPError(status: notAcceptable, code: "unsupported_epcis_version", message: "This server speaks EPCIS 2.0.0, not \(version.prefix(20)).")
        }
        if let version = request.headers.first(name: "GS1-CBV-Version"), !version.hasPrefix("2.0") {
            throw HTTPError(status: notAcceptable, code: "unsupported_cbv_version", message: "This server speaks CBV 2.0.0, not \(version.prefix(20)).")
        }
    }

    static func errorBehaviour(_ request: Request) throws -> SupplyService.ErrorBehaviour {
        guard let text = request.headers.first(name: "GS1-Capture-Error-Behaviour") else { return .rollback }
        guard let behaviour = SupplyService.ErrorBehaviour(rawValue: text.lowercased()) else {
            throw DomainError.invalid("'GS1-Capture-Error-Behaviour' must be rollback or proceed.")
        }
        return behaviour
    }

    static func scanned(_ text: String, year: Int) throws -> ScannedPack {
        do { return try ScannedPack(text, referenceYear: year) } catch {
            throw DomainError.invalidResource(path: "id", problem: "\(error.code): \(error.message)")
        }
    }

    static func gs1(_ text: String, year: Int) throws -> GS1Date {
        do { return try GS1Date(yymmdd: text, referenceYear: year, field: "exp") } catch {
            throw DomainError.invalidResource(path: "exp", problem: error.message)
        }
    }

    static func eventQuery(_ query: QueryParameters) throws -> EPCISEventQuery {
        var result = EPCISEventQuery()
        func list(_ name: String) -> [String] {
            query.all(name).flatMap { $0.split(separator: "|").map(String.init) }.filter { !$0.isEmpty }
        }
        result.eventTypes = list("eventType")
        if let bad = result.eventTypes.first(where: { !EPCISEvent.types.contains($0) }) {
            throw DomainError.invalid("'eventType' \(bad.prefix(40)) is not an EPCIS event type.")
        }
        for (name, keyPath) in [("GE_eventTime", \EPCISEventQuery.fromTime), ("LT_eventTime", \EPCISEventQuery.beforeTime)] {
            guard let text = query[name] else { continue }
            guard let stamp = EPCISTimestamp(text) else { throw DomainError.invalid("'\(name)' must be an xsd:dateTimeStamp.") }
            result[keyPath: keyPath] = stamp.date
        }
        result.bizSteps = list("EQ_bizStep").map { EPCISReader.term($0, "BizStep-") }
        result.dispositions = list("EQ_disposition").map { EPCISReader.term($0, "Disp-") }
        result.epcs = list("MATCH_epc").map(EPCISReader.canonical)
        result.anyEPCs = list("MATCH_anyEPC").map(EPCISReader.canonical)
        result.bizLocations = list("EQ_bizLocation").map(EPCISReader.canonical)
        result.readPoints = list("EQ_readPoint").map(EPCISReader.canonical)
        for name in ["MATCH_epc", "MATCH_anyEPC", "EQ_bizLocation", "EQ_readPoint", "EQ_bizStep", "EQ_disposition", "eventType"] where list(name).count > 100 {
            throw DomainError.invalid("'\(name)' lists at most 100 values.")
        }
        if let text = query["perPage"] {
            guard let perPage = Int(text), (1...EPCISEventQuery.maximumPerPage).contains(perPage) else {
                throw DomainError.invalid("'perPage' must be 1 to \(EPCISEventQuery.maximumPerPage).")
            }
            result.perPage = perPage
        }
        if let token = query["nextPageToken"] {
            guard let after = Int64(token), after >= 0 else { throw DomainError.invalid("'nextPageToken' is not one this server gave.") }
            result.after = after
        }
        let known: Set<String> = ["eventType", "GE_eventTime", "LT_eventTime", "EQ_bizStep", "EQ_disposition", "MATCH_epc", "MATCH_anyEPC",
                                  "EQ_bizLocation", "EQ_readPoint", "perPage", "nextPageToken"]
        if let unknown = query.pairs.map(\.name).first(where: { !known.contains($0) }) {
            throw DomainError.invalid("Query parameter '\(unknown.prefix(40))' is not supported here.")
        }
        return result
    }

    /// The stored event as sent, with our hash id as its eventID when it came without one, and its
    /// error declaration when one was made later.
    static func eventJSON(_ event: StoredEPCISEvent, declaration: (time: Date, reason: String?, corrective: [String])?) -> [UInt8] {
        var members: [(name: String, json: [UInt8])] = []
        if event.senderEventID == nil { members.append(("eventID", Array(JSONText.quoted(event.hashID).utf8))) }
        if let declaration, !event.event.contains(subsequence: Array("\"errorDeclaration\"".utf8)) {
            var text = "{\"declarationTime\":" + JSONText.quoted(Timestamp.format(declaration.time))
            if let reason = declaration.reason { text += ",\"reason\":" + JSONText.quoted(reason) }
            text += ",\"correctiveEventIDs\":[" + declaration.corrective.map(JSONText.quoted).joined(separator: ",") + "]}"
            members.append(("errorDeclaration", Array(text.utf8)))
        }
        guard !members.isEmpty, event.event.first == UInt8(ascii: "{") else { return event.event }
        var out: [UInt8] = [UInt8(ascii: "{")]
        for member in members { out += Array(JSONText.quoted(member.name).utf8) + [UInt8(ascii: ":")] + member.json + [UInt8(ascii: ",")] }
        if event.event.count == 2 { out.removeLast() }
        return out + event.event.dropFirst()
    }

    static func queryDocument(_ events: [StoredEPCISEvent], declarations: [String: (time: Date, reason: String?, corrective: [String])]) throws -> [UInt8] {
        var prefixes: [String: String] = [:]
        let standard = EPCISContext().prefixes
        for event in events {
            guard case .object(let members)? = try? JSONParser.parse(event.prefixes) else { continue }
            for member in members where standard[member.key] == nil { prefixes[member.key] = member.value.stringValue }
        }
        var context = "[\"https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld\""
        if !prefixes.isEmpty {
            context += ",{" + prefixes.sorted { $0.key < $1.key }.map { JSONText.quoted($0.key) + ":" + JSONText.quoted($0.value) }.joined(separator: ",") + "}"
        }
        context += "]"
        var out = Array("{\"@context\":\(context),\"type\":\"EPCISQueryDocument\",\"schemaVersion\":\"2.0\",\"creationDate\":\(JSONText.quoted(Timestamp.format(Date()))),\"epcisBody\":{\"queryResults\":{\"queryName\":\"SimpleEventQuery\",\"resultsBody\":{\"eventList\":[".utf8)
        for (index, event) in events.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out += eventJSON(event, declaration: declarations[event.hashID])
        }
        out += Array("]}}}}".utf8)
        return out
    }

    static func nextLink(_ query: QueryParameters, token: Int64) -> String {
        var pairs: [String] = []
        for pair in query.pairs where pair.name != "nextPageToken" {
            pairs.append(DigitalLink.percentEncode(pair.name) + "=" + DigitalLink.percentEncode(pair.value))
        }
        pairs.append("nextPageToken=\(token)")
        return "/v1/epcis/events?" + pairs.joined(separator: "&")
    }
}

private struct Binding: Encodable {
    let organization: String
    let prefix: String?
    let gln: String?
    let name: String?
}

private struct CaptureView: Encodable {
    let captureID: String
    let running: Bool
    let success: Bool
    let status: String
    let errorBehaviour: String
    let eventCount: Int
    let capturedCount: Int
    let alertsRaised: Int?
    let createdAt: String
    let finishedAt: String?

    init(_ job: EPCISCaptureJob, alerts: Int?) {
        captureID = job.id
        running = job.status == "running"
        success = job.status == "success"
        status = job.status
        errorBehaviour = job.errorBehaviour
        eventCount = job.eventCount
        capturedCount = job.capturedCount
        alertsRaised = alerts
        createdAt = Timestamp.format(job.createdAt)
        finishedAt = job.finishedAt.map(Timestamp.format)
    }
}

private struct VerificationView: Encodable {
    struct Match: Encodable {
        let given: String?
        let recorded: String?
        let matches: Bool?
    }

    let status: String
    let verified: Bool
    let gtin: String
    let serial: String
    let lot: Match
    let expiry: Match
    let custodian: String?
    let manufacturer: String?
    let reasons: [String]

    init(_ result: PackVerification) {
        status = result.status.rawValue
        verified = result.status == .verified
        gtin = result.key.gtin.digits
        serial = result.key.serial
        lot = Match(given: result.lotGiven, recorded: result.lotRecorded, matches: result.lotMatches)
        expiry = Match(given: result.expiryGiven?.description, recorded: result.expiryRecorded?.description, matches: result.expiryMatches)
        custodian = result.custodian
        manufacturer = result.manufacturer
        reasons = result.reasons
    }
}

/// The response of the GS1 Lightweight Messaging Standard for Verification of Product Identifiers.
private struct LightweightVerification: Encodable {
    struct Data: Encodable {
        let verified: Bool
        let additionalInfo: String?
    }

    let corrUUID: String?
    let requesterGLN: String?
    let responseTimestamp: String
    let data: Data

    init(_ result: PackVerification, corrUUID: String?, requester: String?) {
        self.corrUUID = corrUUID
        requesterGLN = requester
        responseTimestamp = Timestamp.format(Date())
        let info: String?
        switch result.status {
        case .verified: info = nil
        case .unknown: info = "No_match_GTIN_Serial"
        case .recalled: info = "Recalled"
        case .expired: info = "Expired"
        case .dispensed, .decommissioned: info = "Decommissioned"
        case .suspect:
            info = result.lotMatches == false || result.expiryMatches == false ? "No_match_GTIN_Serial_Lot_Expiry" : "Suspect"
        }
        data = Data(verified: result.status == .verified, additionalInfo: info)
    }
}

private struct PackView: Encodable {
    let gtin: String?
    let serial: String?
    let lot: String?
    let expiry: String?
    let state: String
    let manufacturer: String?
    let custodian: String
    let packedIn: String?

    init(_ item: SupplyItem) {
        gtin = item.gtin
        serial = item.serial
        lot = item.lot
        expiry = item.expiry?.description
        state = item.state.rawValue
        manufacturer = item.manufacturerOrg
        custodian = item.custodianOrg
        packedIn = item.parent
    }
}

private struct TraceStep: Encodable {
    let eventID: String
    let reporter: String
    let bizStep: String?
    let eventTime: String
    let violations: [String]
    let receipt: Receipt?

    init(_ event: StoredEPCISEvent, receipt: Receipt?) {
        eventID = event.hashID
        reporter = event.reporterOrg
        bizStep = event.bizStep
        eventTime = Timestamp.format(event.eventTime)
        violations = event.violations
        self.receipt = receipt
    }
}

private struct AlertView: Encodable {
    let cursor: String?
    let id: String
    let kind: String
    let epc: String?
    let gtin: String?
    let serial: String?
    let eventID: String?
    let detail: String
    let parties: [String]
    let documentHash: String
    let raisedAt: String
    let resolution: String?
    let resolutionReason: String?
    let resolvedBy: String?
    let resolvedAt: String?

    init(_ alert: SupplyAlert, seq: Int64?) {
        cursor = seq.map(String.init)
        id = alert.id
        kind = alert.kind
        epc = alert.epc
        gtin = alert.gtin
        serial = alert.serial
        eventID = alert.eventHashID
        detail = alert.detail
        parties = alert.parties
        documentHash = alert.documentHash
        raisedAt = Timestamp.format(alert.raisedAt)
        resolution = alert.resolution
        resolutionReason = alert.resolutionReason
        resolvedBy = alert.resolvedBy
        resolvedAt = alert.resolvedAt.map(Timestamp.format)
    }
}

private struct RecallView: Encodable {
    let id: String
    let gtin: String
    let lots: [String]
    let affectedPacks: Int
    let ledger: LedgerRef?
}

extension GS1Date {
    static var today: GS1Date {
        let stamp = EPCISTimestamp(milliseconds: Int64(Date().timeIntervalSince1970 * 1000))
        return GS1Date(isoDate: String(stamp.utc.prefix(10))) ?? GS1Date(isoDate: "2000-01-01")!
    }
}

extension Array where Element == UInt8 {
    func contains(subsequence: [UInt8]) -> Bool {
        guard !subsequence.isEmpty, subsequence.count <= count else { return false }
        for start in 0...(count - subsequence.count) where self[start] == subsequence[0] && Array(self[start..<(start + subsequence.count)]) == subsequence {
            return true
        }
        return false
    }
}
