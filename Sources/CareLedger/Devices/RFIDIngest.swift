import Crypto
import FoundationEssentials
import Ledger
import Postgres

/// A reader's batch as the service takes it: where it was read and the reads, tags already decoded.
struct RFIDBatch: Sendable {
    struct Read: Sendable {
        let epc: String
        let time: Date
    }

    /// The reader's id, or the read point when the batch names no reader.
    let reader: String
    let readerId: String?
    let readPoint: String?
    let reads: [Read]
    /// The batch as sent, for its anchored hash.
    let document: JSONValue

    /// Reads the body: `readerId` or `readPoint`, and up to `limit` reads of `{epc, time, antenna?, rssi?}`.
    init(_ body: JSONValue, limit: Int) throws {
        let readerId = try body["readerId"]?.stringValue.map { text throws(DomainError) in try PlainText.validated(text, field: "readerId") }
        let readPoint = try body["readPoint"]?.stringValue.map { text throws(DomainError) in try PlainText.validated(text, field: "readPoint") }
        guard let reader = readerId ?? readPoint, (1...200).contains(reader.count) else {
            throw DomainError.invalid("'readerId' (a reader registered at a location) or 'readPoint' (a GLN or location name) is required, 1 to 200 characters.")
        }
        guard case .array(let values)? = body["reads"], !values.isEmpty else { throw DomainError.invalid("'reads' is a non-empty array of {epc, time}.") }
        guard values.count <= limit else {
            throw DomainError.device(.batchTooLarge, "'reads' holds at most \(limit) reads per batch; this one has \(values.count). Split it.")
        }
        var reads: [Read] = []
        reads.reserveCapacity(values.count)
        for (index, value) in values.enumerated() {
            guard case .object(let fields) = value else { throw DomainError.invalidResource(path: "reads[\(index)]", problem: "must be an object") }
            for (name, _) in fields where !["epc", "time", "antenna", "rssi"].contains(name) {
                throw DomainError.invalidResource(path: "reads[\(index)].\(name)", problem: "is not a field of a read (epc, time, antenna, rssi)")
            }
            // EPC URNs and tag hex are printable ASCII; checked on bytes, as a batch holds hundreds.
            guard let epcText = value["epc"]?.stringValue, epcText.utf8.count <= 200, epcText.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
                throw DomainError.invalidResource(path: "reads[\(index)].epc", problem: "is required, an EPC URN or tag hex")
            }
            guard let timeText = value["time"]?.stringValue, let time = Timestamp.parseToMillisecond(timeText) else {
                throw DomainError.invalidResource(path: "reads[\(index)].time", problem: "is required, an RFC 3339 timestamp")
            }
            if let antenna = value["antenna"] {
                guard let number = antenna.numberValue, number.rounded() == number, (0...65_535).contains(number) else {
                    throw DomainError.invalidResource(path: "reads[\(index)].antenna", problem: "is an antenna number, 0 to 65535")
                }
            }
            if let rssi = value["rssi"] {
                guard let number = rssi.numberValue, (-200...200).contains(number) else {
                    throw DomainError.invalidResource(path: "reads[\(index)].rssi", problem: "is a signal strength in dBm, -200 to 200")
                }
            }
            let epc: String
            do {
                epc = try DeviceService.epc(epcText)
            } catch let DomainError.device(refusal, message) {
                throw DomainError.device(refusal, "reads[\(index)].\(message)")
            } catch DomainError.invalidResource(_, let problem) {
                throw DomainError.invalidResource(path: "reads[\(index)].epc", problem: problem)
            }
            reads.append(Read(epc: epc, time: time))
        }
        self.reader = reader
        self.readerId = readerId
        self.readPoint = readPoint
        self.reads = reads
        document = body
    }

    /// One sighting per tag per `window` seconds: a read within the window of the tag's last
    /// sighting at this reader (`previous`, from earlier batches, or earlier in this one) is a repeat.
    func sightings(after previous: [String: Date], window: Double) -> [DeviceStore.Sighting] {
        var last = previous
        var sightings: [DeviceStore.Sighting] = []
        for read in reads.sorted(by: { $0.time < $1.time }) {
            // Earlier than the last sighting counts as a repeat too: a reader's late retransmission.
            if let seen = last[read.epc], read.time.timeIntervalSince(seen) < window { continue }
            last[read.epc] = read.time
            sightings.append(DeviceStore.Sighting(epc: read.epc, at: read.time))
        }
        return sightings
    }
}

extension DeviceService {
    struct IngestResult: Sendable {
        let batchId: String
        let reads: Int
        let sightings: Int
        let devicesSeen: Int
        let unknownTags: Int
        let alerts: Int
        let queueId: Int64

        init(batchId: String, reads: Int, sightings: Int, devicesSeen: Int, unknownTags: Int, alerts: Int, queueId: Int64) {
            (self.batchId, self.reads, self.sightings, self.devicesSeen) = (batchId, reads, sightings, devicesSeen)
            (self.unknownTags, self.alerts, self.queueId) = (unknownTags, alerts, queueId)
        }

        /// Kept with the batch's Idempotency-Key, so a retry answers the same counts.
        var answer: [UInt8] {
            JCS.canonicalize(.object([
                ("alerts", .number(Double(alerts))), ("batchId", .string(batchId)), ("devicesSeen", .number(Double(devicesSeen))),
                ("queueId", .number(Double(queueId))), ("reads", .number(Double(reads))), ("sightings", .number(Double(sightings))),
                ("unknownTags", .number(Double(unknownTags))),
            ]))
        }

        init?(answer: [UInt8]) {
            guard let value = try? JSONParser.parse(answer), let batchId = value["batchId"]?.stringValue else { return nil }
            func count(_ name: String) -> Int? {
                value[name]?.numberValue.flatMap { $0 >= 0 && $0 < 9e15 && $0.rounded() == $0 ? Int($0) : nil }
            }
            guard let reads = count("reads"), let sightings = count("sightings"), let devicesSeen = count("devicesSeen"),
                  let unknownTags = count("unknownTags"), let alerts = count("alerts"), let queueId = count("queueId") else { return nil }
            self.init(batchId: batchId, reads: reads, sightings: sightings, devicesSeen: devicesSeen, unknownTags: unknownTags, alerts: alerts,
                      queueId: Int64(queueId))
        }
    }

    /// Takes one reader batch: collapses repeats, moves last-seen forward, stores unknown tags, raises
    /// `unknown_tag` (once per organization and tag) and `left_owner` (once per stay away), and anchors
    /// the batch as one entry over its canonical form. All in one transaction per reader.
    func ingest(_ batch: RFIDBatch, idempotency: Idempotency? = nil, _ call: CallContext) async throws -> IngestResult {
        try await idempotencyKeys.once(idempotency, orgId: call.caller.orgId, on: pool, replay: { id in
            var answer: [UInt8]?
            if let idempotency { answer = try await idempotencyKeys.answer(idempotency, orgId: call.caller.orgId, on: pool) }
            guard let answer, let result = IngestResult(answer: answer) else { throw DomainError.inconsistentStorage }
            return result
        }) {
            try await ingestOnce(batch, idempotency: idempotency, call)
        }
    }

    private func ingestOnce(_ batch: RFIDBatch, idempotency: Idempotency?, _ call: CallContext) async throws -> IngestResult {
        let org = call.caller.orgId
        let now = Date()
        let id = ResourceID.generate("rfb", now: now)
        let canonical = JCS.canonicalize(batch.document)
        let documentHash = "sha256:" + SHA256.hexDigest(canonical)
        return try await pool.withTransaction { transaction in
            let location: String
            if let readerId = batch.readerId {
                guard let known = try await store.readerLocation(org: org, reader: readerId, on: transaction) else {
                    throw DomainError.invalid("Reader \(readerId) is not registered at a location of \(org) (POST /v1/devices/locations).")
                }
                location = known
            } else {
                location = batch.readPoint ?? batch.reader
                try await checkLocation(location, org: org, on: transaction)
            }
            try await store.lockReader(org: org, reader: batch.reader, on: transaction)
            let epcs = Array(Set(batch.reads.map(\.epc)))
            let previous = try await store.lastSightings(org: org, reader: batch.reader, epcs: epcs, on: transaction)
            let sightings = batch.sightings(after: previous, window: settings.collapseWindow)
            let latest = sightings.reduce(into: [String: Date]()) { $0[$1.epc] = max($0[$1.epc] ?? $1.at, $1.at) }
            let known = try await store.devices(byEPC: Array(latest.keys), on: transaction)
            var seen: [(id: String, at: Date, away: Bool)] = []
            var unknown: [DeviceStore.Sighting] = []
            var alerts: [DeviceAlert] = []
            for (epc, at) in latest.sorted(by: { $0.key < $1.key }) {
                guard let device = known[epc] else {
                    unknown.append(DeviceStore.Sighting(epc: epc, at: at))
                    continue
                }
                let away = device.ownerOrg != org
                if away, !device.awayAlerted {
                    alerts.append(alert(.leftOwner, device: device.id, epc: epc,
                                        detail: "seen \(Timestamp.format(at)) by \(org) at \(location), away from its owner \(device.ownerOrg)",
                                        parties: [device.ownerOrg, org], at: now))
                }
                seen.append((device.id, at, away))
            }
            let (queueId, fresh) = try await store.recordBatch(
                id: id, org: org, reader: batch.reader, location: location, reads: batch.reads.count, sightings: sightings, document: canonical,
                documentHash: documentHash, seen: seen, unknown: unknown, at: now, on: transaction)
            for tag in unknown where fresh.contains(tag.epc) {
                alerts.append(alert(.unknownTag, device: nil, epc: tag.epc, detail: "tag seen \(Timestamp.format(tag.at)) at \(location) is no registered device's",
                                    parties: [org], at: now))
            }
            try await store.insert(alerts, on: transaction)
            let result = IngestResult(batchId: id, reads: batch.reads.count, sightings: sightings.count, devicesSeen: seen.count,
                                      unknownTags: unknown.count, alerts: alerts.count, queueId: queueId)
            try await idempotencyKeys.record(idempotency, orgId: org, resourceId: id, answer: result.answer, on: transaction)
            return result
        }
    }
}
