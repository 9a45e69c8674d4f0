import FoundationEssentials
import GS1
import Ledger
import Postgres
import Synchronization

/// How long a shipment may wait for its receipt before both sides hear of it.
public struct SupplySettings: Sendable {
    public var receiptWindow: Duration = .seconds(72 * 3600)
    public init() {}
}

/// The supply chain's rules: who may bind keys, capture, see events and resolve alerts; custody as
/// events arrive (`CustodyEngine`); what gets anchored.
struct SupplyService: Sendable {
    let pool: PostgresPool
    let ledger: LedgerService
    let settings: SupplySettings
    let sweeps = SweepThrottle()
    let store = SupplyStore()
    let audit = AuditStore()
    let idempotencyKeys = IdempotencyStore()
    /// Verifications are audited like every read, in batches: one commit for many pharmacists' scans.
    let readAudits: WriteCoalescer<AuditEvent, Bool>

    init(pool: PostgresPool, ledger: LedgerService, settings: SupplySettings = SupplySettings()) {
        self.pool = pool
        self.ledger = ledger
        self.settings = settings
        readAudits = WriteCoalescer(failsEveryone: { ($0 as? PostgresError)?.isUnavailable == true }) { events in
            try await AuditStore().record(events, on: pool)
            return events.map { _ in true }
        }
    }

    enum ErrorBehaviour: String, Sendable { case rollback, proceed }

    /// What a capture did, for the job and the 202.
    struct CaptureResult: Sendable {
        let job: EPCISCaptureJob
        let hashIDs: [String]
        let alerts: Int
    }

    // MARK: Trading partners

    func bindPrefix(_ prefix: String, to org: String, _ call: CallContext) async throws {
        guard prefix.count >= 6, prefix.count <= 12, prefix.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw DomainError.invalid("'prefix' is a GS1 company prefix: 6 to 12 digits.")
        }
        guard let organization = try await IdentityStore().organization(org, on: pool) else { throw DomainError.notFound("No organization \(org).") }
        guard organization.kind == OrganizationKind.manufacturer.rawValue else {
            throw DomainError.invalid("Company prefixes are bound to manufacturers; \(org) is a \(organization.kind).")
        }
        try await pool.withTransaction { transaction in
            guard try await store.bindPrefix(prefix, to: org, on: transaction) else {
                throw DomainError.conflict("Company prefix \(prefix) is bound to another organization.")
            }
            try await audit.record(call.permitted("gs1_company_prefix", prefix, reason: "bound to \(org)"), on: transaction)
        }
    }

    func bindLocation(_ gln: String, to org: String, name: String, _ call: CallContext) async throws {
        do { _ = try GLN(gln) } catch { throw DomainError.invalid("'gln': \(error.message).") }
        guard (1...200).contains(name.count) else { throw DomainError.invalid("'name' must be 1 to 200 characters.") }
        guard try await IdentityStore().organization(org, on: pool) != nil else { throw DomainError.notFound("No organization \(org).") }
        try await pool.withTransaction { transaction in
            guard try await store.bindLocation(gln, to: org, name: name, on: transaction) else {
                throw DomainError.conflict("GLN \(gln) is bound to another organization.")
            }
            try await audit.record(call.permitted("gs1_location", gln, reason: "bound to \(org)"), on: transaction)
        }
    }

    // MARK: Capture

    /// Checks, hashes, applies custody to and stores the events of one capture, all in one
    /// transaction. Under `rollback` an event that cannot be captured (a duplicate) fails the whole
    /// capture; under `proceed` it is skipped and named in the job's errors. Events that break a
    /// custody rule are not errors: they are stored, marked, and raise alerts.
    func capture(_ events: [EPCISEvent], document: [UInt8], context: EPCISContext, behaviour: ErrorBehaviour, idempotency: Idempotency? = nil,
                 _ call: CallContext) async throws -> CaptureResult {
        let orgId = call.caller.orgId
        return try await idempotencyKeys.once(idempotency, orgId: orgId, on: pool, replay: { id in
            var alerts: [UInt8]?
            if let idempotency { alerts = try await idempotencyKeys.answer(idempotency, orgId: orgId, on: pool) }
            return try await replayCapture(id, alerts: alerts)
        }) {
            try await pool.withTransaction { transaction in
                let result = try await capture(events, document: document, context: context, behaviour: behaviour, call, on: transaction)
                try await idempotencyKeys.record(idempotency, orgId: orgId, resourceId: result.job.id, answer: Array(String(result.alerts).utf8),
                                                 on: transaction)
                return result
            }
        }
    }

    /// A retried capture's answer: the job the first one made, with the alerts it raised then.
    private func replayCapture(_ id: String, alerts answer: [UInt8]?) async throws -> CaptureResult {
        guard let job = try await store.capture(id, on: pool) else { throw DomainError.inconsistentStorage }
        return CaptureResult(job: job, hashIDs: [], alerts: answer.flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0)
    }

    /// A capture inside the caller's transaction (a pharmacy's fill records its pack's dispensing
    /// with the fill, or neither is).
    func capture(_ events: [EPCISEvent], document: [UInt8], context: EPCISContext, behaviour: ErrorBehaviour, _ call: CallContext,
                 on transaction: PostgresTransaction) async throws -> CaptureResult {
        let reporter = call.caller.orgId
        let now = Date()
        var job = EPCISCaptureJob(id: ResourceID.generate("cap", now: now), organizationId: reporter, errorBehaviour: behaviour.rawValue,
                                  status: "running", eventCount: events.count, capturedCount: 0, errors: Array("[]".utf8), createdAt: now, finishedAt: nil)
        let touched = events.flatMap(CustodyEngine.touched(by:))
        try await store.lock(touched, on: transaction)
        var seen = try await store.existing(events.map { $0.hashID }, on: transaction)
        var errors: [JSONValue] = []
        var accepted: [EPCISEvent] = []
        for event in events {
            if event.errorDeclaration != nil {
                accepted.append(event)
                continue
            }
            guard seen.insert(event.hashID).inserted else {
                errors.append(Self.errorJSON(event, "duplicate_event", "an event with this hash id is already captured"))
                continue
            }
            accepted.append(event)
        }
        if !errors.isEmpty, behaviour == .rollback {
            job.status = "failed"
            job.errors = JCS.canonicalize(.array(errors))
            job.finishedAt = Date()
            try await store.insertCapture(job, document: document, on: transaction)
            try await audit.record(call.permitted("epcis_capture", job.id, reason: "rolled back: \(errors.count) errors"), on: transaction)
            return CaptureResult(job: job, hashIDs: [], alerts: 0)
        }
        try await store.insertCapture(job, document: document, on: transaction)
        let gtins = Set(touched.compactMap { CustodyEngine.packParts($0)?.gtin })
        let glns = Set(accepted.flatMap { event in
            ([event.readPoint, event.bizLocation].compactMap { $0 } + (event.sources + event.destinations).map { $0.id }).compactMap(EPCISReader.gln)
        })
        let directory = try await store.directory(gtins: Array(gtins), glns: Array(glns), on: transaction)
        let loaded = try await store.items(touched, lock: true, on: transaction)
        var engine = CustodyEngine(reporter: reporter, directory: directory, items: loaded)
        let documentPrefixes = Self.prefixesJSON(context)
        var stored: [StoredEPCISEvent] = []
        var alerts: [SupplyAlert] = []
        var declarations: [EPCISEvent] = []
        for event in accepted {
            if event.errorDeclaration != nil {
                declarations.append(event)
                continue
            }
            let outcome = engine.apply(event, recordedAt: now)
            stored.append(Self.stored(event, violations: outcome.violations.map { $0.kind.rawValue }, reporter: reporter, captureID: job.id, at: now,
                                      context: context, documentPrefixes: documentPrefixes))
            for violation in outcome.violations {
                alerts.append(alert(kind: violation.kind.rawValue, epc: violation.epc, event: event.hashID, detail: violation.detail,
                                    items: engine.items, reporter: reporter, owner: violation.epc.flatMap { directory.owner(ofEPC: $0) }, at: now))
            }
            for notice in outcome.notices {
                alerts.append(alert(kind: notice.kind.rawValue, epc: notice.epc, event: event.hashID, detail: notice.detail,
                                    items: engine.items, reporter: reporter, owner: directory.owner(ofEPC: notice.epc), at: now))
            }
        }
        _ = try await store.insert(stored, on: transaction)
        for event in declarations {
            guard let declaration = event.errorDeclaration else { continue }
            if seen.insert(event.hashID).inserted {
                // Declared before (or without) the original: keep the event as sent, retracted from the start.
                _ = try await store.insert([Self.stored(event, violations: [], reporter: reporter, captureID: job.id, at: now, context: context,
                                                        documentPrefixes: documentPrefixes)], on: transaction)
            }
            _ = try await store.insertDeclaration(hashID: event.hashID, by: reporter, time: declaration.declarationTime.date, reason: declaration.reason,
                                                  corrective: declaration.correctiveEventIDs, documentHash: JCS.documentHash(event.json),
                                                  captureID: job.id, on: transaction)
        }
        let changed = engine.changed.compactMap { engine.items[$0] }
        try await store.save(changed, holders: Array(engine.holders), at: now, on: transaction)
        try await store.recordShipments(engine.shipments, receipts: engine.receipts, on: transaction)
        try await store.insert(alerts, on: transaction)
        job.capturedCount = stored.count + declarations.count
        job.status = errors.isEmpty ? "success" : "partial"
        job.errors = JCS.canonicalize(.array(errors))
        job.finishedAt = Date()
        try await store.finishCapture(job, on: transaction)
        try await audit.record(call.permitted("epcis_capture", job.id, reason: "\(job.capturedCount) events, \(alerts.count) alerts"), on: transaction)
        return CaptureResult(job: job, hashIDs: stored.map { $0.hashID } + declarations.map { $0.hashID }, alerts: alerts.count)
    }

    static func stored(_ event: EPCISEvent, violations: [String], reporter: String, captureID: String, at now: Date, context: EPCISContext,
                       documentPrefixes: [UInt8]) -> StoredEPCISEvent {
        StoredEPCISEvent(
            hashID: event.hashID, senderEventID: event.senderEventID, senderHashAgrees: event.senderHashAgrees, eventType: event.type,
            eventTime: event.eventTime.date, recordTime: now, action: event.action, bizStep: event.bizStep, disposition: event.disposition,
            readPoint: event.readPoint, bizLocation: event.bizLocation, parentID: event.parentID, epcs: event.epcs, anyEPCs: event.anyEPCs,
            reporterOrg: reporter, captureID: captureID, violations: violations, event: JCS.canonicalize(event.json),
            prefixes: event.json["@context"] == nil ? documentPrefixes : prefixesJSON(context.adding(contextOf: event.json)))
    }

    /// The dispensing of packs by a pharmacy's fill of a prescription, as CareLedger records it for
    /// the supply chain: an EPCIS ObjectEvent naming the packs and, as its business transaction, the
    /// prescription (an opaque id: no patient data). A second dispense of a pack is an alert.
    func recordDispense(of packs: [PackKey], prescriptionId: String, fill: Int, at now: Date, _ call: CallContext,
                        on transaction: PostgresTransaction) async throws {
        guard !packs.isEmpty else { return }
        let stamp = EPCISTimestamp(milliseconds: Int64(now.timeIntervalSince1970 * 1000)).utc
        let event = JSONValue.object([
            ("type", .string("ObjectEvent")), ("eventTime", .string(stamp)), ("eventTimeZoneOffset", .string("+00:00")),
            ("epcList", .array(packs.map { .string($0.digitalLink) })), ("action", .string("OBSERVE")), ("bizStep", .string("dispensing")),
            ("disposition", .string("dispensed")),
            ("bizTransactionList", .array([.object([("type", .string("urn:careledger:btt:prescription")),
                                                     ("bizTransaction", .string("urn:careledger:prescription:\(prescriptionId):fill:\(fill)"))])])),
        ])
        let read = try EPCISReader.read(event)
        _ = try await capture(read, document: JCS.canonicalize(event), context: EPCISContext(), behaviour: .proceed, call, on: transaction)
    }

    func captureJob(_ id: String, _ call: CallContext) async throws -> EPCISCaptureJob {
        guard let job = try await store.capture(id, on: pool), job.organizationId == call.caller.orgId else {
            throw DomainError.notFound("No capture \(id).")
        }
        return job
    }

    /// Raises `shipment_not_received` for shipments past the receipt window, for the shipper, the
    /// receiver and the manufacturer: the gap shows on both sides. Run as alert feeds are polled
    /// (at most every few seconds per process); a shipment is alerted once.
    func raiseOverdueShipments(now: Date = Date()) async throws {
        guard sweeps.due(now: ContinuousClock.now) else { return }
        let seconds = Double(settings.receiptWindow.components.seconds)
        try await pool.withTransaction { transaction in
            let overdue = try await store.overdueShipments(before: now.addingTimeInterval(-seconds), on: transaction)
            guard !overdue.isEmpty else { return }
            let items = try await store.items(overdue.map { $0.epc }, lock: false, on: transaction)
            let alerts = overdue.map { shipment in
                var parties = items
                if var item = parties[shipment.epc] { item.pendingReceiver = shipment.to; parties[shipment.epc] = item }
                return alert(kind: "shipment_not_received", epc: shipment.epc, event: shipment.event,
                             detail: "shipped \(Timestamp.format(shipment.at)) to \(shipment.to ?? "an unnamed receiver"), not received",
                             items: parties, reporter: shipment.from, at: now)
            }
            try await store.insert(alerts, on: transaction)
            try await store.markOverdue(overdue.map { $0.id }, on: transaction)
        }
    }

    static func errorJSON(_ event: EPCISEvent, _ code: String, _ message: String) -> JSONValue {
        .object([("path", .string(event.path)), ("eventID", .string(event.hashID)), ("error", .string(code)), ("message", .string(message))])
    }

    /// The CURIE prefixes an event was sent under (its document's, and its own), as JCS: what its
    /// hash depends on besides the event.
    static func prefixesJSON(_ context: EPCISContext) -> [UInt8] {
        JCS.canonicalize(.object(context.prefixes.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) }))
    }

    /// An alert for the parties of an item: the reporter, the owner of the GTIN's company prefix, the
    /// item's manufacturer, custodian and expected receiver.
    func alert(kind: String, epc: String?, event: String?, detail: String, items: [String: SupplyItem], reporter: String, owner: String? = nil,
               at now: Date) -> SupplyAlert {
        let item = epc.flatMap { items[$0] }
        var parties = [reporter]
        for party in [owner, item?.manufacturerOrg, item?.custodianOrg, item?.pendingReceiver].compactMap({ $0 }) where !parties.contains(party) {
            parties.append(party)
        }
        let pack = epc.flatMap(CustodyEngine.packParts)
        let id = ResourceID.generate("alr", now: now)
        let document = JSONValue.object([
            ("id", .string(id)), ("kind", .string(kind)), ("epc", epc.map(JSONValue.string) ?? .null), ("event", event.map(JSONValue.string) ?? .null),
            ("detail", .string(detail)), ("parties", .array(parties.map(JSONValue.string))), ("raisedAt", .string(Timestamp.format(now))),
        ])
        return SupplyAlert(id: id, kind: kind, epc: epc, gtin: pack?.gtin ?? item?.gtin, serial: pack?.serial, eventHashID: event, detail: detail,
                           parties: parties, documentHash: JCS.documentHash(document), raisedAt: now)
    }
}

/// Lets one sweep in a few seconds through, however many feeds are polled at once.
final class SweepThrottle: Sendable {
    private let last = Mutex<ContinuousClock.Instant?>(nil)
    static let interval = Duration.seconds(2)

    func due(now: ContinuousClock.Instant) -> Bool {
        last.withLock { last in
            if let previous = last, now - previous < Self.interval { return false }
            last = now
            return true
        }
    }
}
