@testable import CareLedger
import Crypto
import Foundation
import Ledger
import Postgres
import Testing
import TestSupport

@Suite(.serialized) struct DeviceTests {
    typealias World = DeviceWorld

    static let fixtures = ["device-example.json", "device-example-f001-feedingtube.json"]

    @Test(arguments: fixtures)
    func everyDeviceFixtureIsRegisteredUnchanged(name: String) async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            let text = try String(contentsOf: SharedFiles.url("fixtures/fhir/\(name)"), encoding: .utf8)
            let reply = await w.register(text, type: "feeding-tube")
            #expect(reply.status == 201, "\(name): \(reply.text)")
            let id = try #require(reply["id"])
            #expect(reply.response.headers.first(name: "Location") == "/v1/devices/\(id)")
            let read = await api.call(.get, "/v1/devices/\(id)", key: w.hospitalA)
            #expect(read.status == 200)
            let back = try #require(try JSONParser.parse(read.response.body)["resource"])
            #expect(JCS.canonicalize(back) == JCS.canonicalize(try JSONParser.parse(Array(text.utf8))), "\(name)")
            #expect(read["status"] == "received" && read["owner"] == w.orgA && read["type"] == "feeding-tube")
            #expect(read["documentHash"] == JCS.documentHash(try JSONParser.parse(Array(text.utf8))))
            // Another hospital does not see it; the regulator does.
            #expect(await api.call(.get, "/v1/devices/\(id)", key: w.hospitalB).status == 404)
            #expect(await api.call(.get, "/v1/devices/\(id)", key: w.regulator).status == 200)
        }
    }

    @Test func udiCarriersAreReadAndMustAgreeWithTheResource() async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            let gs1 = await w.register(World.device(extra: #","lotNumber":"LOT-7A","serialNumber":"SN0042","expirationDate":"2027-11-30""#))
            #expect(gs1.status == 201, "\(gs1.text)")
            let udi = try #require(gs1.json["udi"] as? [String: Any])
            #expect(udi["deviceIdentifier"] as? String == World.gs1DI && udi["agency"] as? String == "gs1")
            #expect(udi["lot"] as? String == "LOT-7A" && udi["serial"] as? String == "SN0042")
            #expect(udi["expiryDate"] as? String == "2027-11-30" && udi["manufactureDate"] as? String == "2024-01-15")
            // The raw form with its FNC1 and group separators, as machine-readable base64.
            let raw = Base64.encode(Array("]d20100884521050122172711301OLOT-7A\u{1D}21SN0042".replacingOccurrences(of: "1OLOT", with: "10LOT").utf8))
            let aidc = await w.register(#"{"resourceType":"Device","udiCarrier":[{"deviceIdentifier":"00884521050122","carrierAIDC":"\#(raw)"}]}"#)
            #expect(aidc.status == 201, "\(aidc.text)")
            #expect((aidc.json["udi"] as? [String: Any])?["serial"] as? String == "SN0042")
            let hibcc = await w.register(#"{"resourceType":"Device","udiCarrier":[{"deviceIdentifier":"+A123BJC5D6E71","issuer":"http://hl7.org/fhir/NamingSystem/hibcc","carrierHRF":"+A123BJC5D6E71/$$3261231LOT42H"}]}"#)
            #expect(hibcc.status == 201, "\(hibcc.text)")
            #expect((hibcc.json["udi"] as? [String: Any])?["lot"] as? String == "LOT42")
            let isbt = await w.register(#"{"resourceType":"Device","udiCarrier":[{"deviceIdentifier":"A9999XYZ100T0944","issuer":"http://hl7.org/fhir/NamingSystem/iccbba-other","carrierHRF":"=/A9999XYZ100T0944=,000025=A99971312345600=>014032=}013032&,1000000000000XYZ123"}]}"#)
            #expect(isbt.status == 201, "\(isbt.text)")

            func refusal(_ resource: String) async -> (Int, String?, String) {
                let reply = await w.register(resource)
                return (reply.status, reply.errorCode, (reply.json["error"] as? [String: Any])?["message"] as? String ?? "")
            }
            let wrongDI = await refusal(World.device(di: "00884521050139"))
            #expect(wrongDI.0 == 422 && wrongDI.1 == "udi_mismatch" && wrongDI.2.contains("deviceIdentifier"), "\(wrongDI)")
            let wrongLot = await refusal(World.device(extra: #","lotNumber":"LOT-8B""#))
            #expect(wrongLot.0 == 422 && wrongLot.1 == "udi_mismatch" && wrongLot.2.contains("lotNumber"), "\(wrongLot)")
            let wrongExpiry = await refusal(World.device(extra: #","expirationDate":"2027-12-31""#))
            #expect(wrongExpiry.1 == "udi_mismatch" && wrongExpiry.2.contains("expirationDate"), "\(wrongExpiry)")
            let wrongIssuer = await refusal(#"{"resourceType":"Device","udiCarrier":[{"deviceIdentifier":"00884521050122","issuer":"http://hl7.org/fhir/NamingSystem/hibcc","carrierHRF":"\#(World.gs1Carrier)"}]}"#)
            #expect(wrongIssuer.1 == "udi_mismatch" && wrongIssuer.2.contains("issuer"), "\(wrongIssuer)")
            let checkDigit = await refusal(World.device(carrier: "(01)00884521050121(21)1", di: "00884521050121"))
            #expect(checkDigit.0 == 422 && checkDigit.1 == "unreadable_udi" && checkDigit.2.contains("gtin_check_digit"), "\(checkDigit)")
            let unknownAgency = await refusal(World.device(carrier: "#A123", di: "A123"))
            #expect(unknownAgency.1 == "unreadable_udi" && unknownAgency.2.contains("unknown_udi_format"), "\(unknownAgency)")
            let hibccCheck = await refusal(#"{"resourceType":"Device","udiCarrier":[{"carrierHRF":"+A123BJC5D6E71H"}]}"#)
            #expect(hibccCheck.1 == "unreadable_udi" && hibccCheck.2.contains("bad_check_character"), "\(hibccCheck)")
            #expect(await w.register(#"{"resourceType":"Patient"}"#).status == 422)
            #expect(await w.register(location: "Basement").status == 400)
            #expect(await w.register(type: "").status == 400)
            let count = try await api.pool.query("SELECT count(*) AS n FROM devices").first?.decode("n", as: Int64.self)
            #expect(count == 4, "only the four good registrations are stored")
        }
    }

    /// Every pair of states, against the table written out here.
    @Test func theLifecycleAllowsExactlyItsTable() {
        let circulation: [String: Set<String>] = [
            "received": ["available"], "available": ["in_use", "cleaning", "maintenance"], "in_use": ["available", "cleaning", "maintenance"],
            "cleaning": ["available", "maintenance"], "maintenance": ["available", "cleaning"],
        ]
        let final: Set<String> = ["recalled", "lost", "retired"]
        for from in DeviceStatus.allCases {
            for to in DeviceStatus.allCases {
                let expected = !final.contains(from.rawValue) && (final.contains(to.rawValue) || circulation[from.rawValue]?.contains(to.rawValue) == true)
                #expect(DeviceLifecycle.allows(from, to) == expected, "\(from.rawValue) -> \(to.rawValue)")
            }
        }
    }

    @Test func readTimesReadOnBytesAgreeWithTheFormatterToTheMillisecond() {
        for text in ["2026-12-04T21:15:07Z", "2026-12-04T21:15:07.123Z", "2026-12-04T23:15:07.5+02:00", "2024-02-29T00:00:00-05:30",
                     "1900-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z"] {
            let milliseconds = { (date: Date?) in date.map { ($0.timeIntervalSince1970 * 1000).rounded() } }
            let fast = Timestamp.parseToMillisecond(text), slow = Timestamp.parse(text)
            #expect(fast != nil && milliseconds(fast) == milliseconds(slow), "\(text): \(String(describing: fast)) vs \(String(describing: slow))")
        }
        for text in ["2026-12-04", "2026-12-04T21:15:07", "2026-02-30T00:00:00Z", "2026-12-04T24:00:00Z", "2026-12-04T21:15:07.Z",
                     "0000-12-31T00:00:00Z", "2026-12-04T21:15:07+15:00", "2026-12-04T21:15:07Z ", "now", ""] {
            #expect(Timestamp.parseToMillisecond(text) == nil, "\(text)")
        }
    }

    /// A time answered when a record is made and the same time read back from the database print
    /// alike, also a hair before a millisecond's end (replays once answered a millisecond later).
    @Test func timesPrintAlikeBeforeAndAfterTheDatabase() throws {
        var generator = SystemRandomNumberGenerator()
        let edges = [1_796_594_478.742_999_9, 1_796_594_478.742_999_5, 1_796_594_478.000_000_1, 0.000_999_9, -0.000_000_4, -1.000_5]
        for seconds in edges + (0..<2000).map({ _ in Double.random(in: 0..<4_000_000_000, using: &generator) }) {
            let made = Date(timeIntervalSince1970: seconds)
            let readBack = try Date(postgresText: made.postgresText)
            #expect(Timestamp.format(made) == Timestamp.format(readBack), "\(seconds)")
            #expect(readBack.postgresText == made.postgresText, "\(seconds) encodes back to the same microsecond")
        }
        #expect(Timestamp.format(Date(timeIntervalSince1970: 1_796_594_478.742)) == "2026-12-06T22:01:18.742Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: -0.25)) == "1969-12-31T23:59:59.750Z")
    }

    @Test func movesAreAnchoredAndARefusedMoveNamesTheCurrentState() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            let w = try await World.make(api)
            let id = try await w.registered()
            let early = await w.move(id, "in_use")
            #expect(early.status == 409 && early.errorCode == "transition_not_allowed", "\(early.text)")
            #expect(early.text.contains("is received") && early.text.contains("available"), "\(early.text)")
            for (to, extra) in [("available", ""), ("in_use", #","patientId":"\#(w.patientId)","location":"ICU""#), ("cleaning", ""), ("maintenance", ""),
                                ("available", #","location":"Store""#), ("retired", #","reason":"end of life""#)] {
                let moved = await w.move(id, to, extra: extra)
                #expect(moved.status == 201, "\(to): \(moved.text)")
                #expect(moved.json["ledger"] is [String: Any], "\(to) is anchored: \(moved.text)")
            }
            let after = await w.move(id, "available")
            #expect(after.status == 409 && after.text.contains("retired") && after.text.contains("final"), "\(after.text)")
            #expect(await w.move(id, "flying").status == 400)
            #expect(await w.move(id, "cleaning", key: w.hospitalB).status == 404)
            let read = await api.call(.get, "/v1/devices/\(id)", key: w.hospitalA)
            #expect(read["status"] == "retired" && read["location"] == "Store")
            let history = try #require(read.json["history"] as? [[String: Any]])
            #expect(history.map { $0["to"] as? String } == ["available", "in_use", "cleaning", "maintenance", "available", "retired"])
            #expect(history[1]["patientId"] as? String == w.patientId)
            try await waitUntil("moves sequenced", deadline: .seconds(20)) {
                (try? await api.pool.query("SELECT count(*) AS n FROM ledger_queue").first?.decode("n", as: Int64.self)) == 0
            }
            await api.ledger.stop()
            let report = try await LedgerVerifier(pool: api.pool).verify()
            #expect(report.anchoredObjects["device.event"] == 6 && report.anchoredObjects["device.registered"] == 1, "\(report.anchoredObjects)")
            try await api.pool.withTransaction { transaction in
                try await transaction.query("SET LOCAL session_replication_role = replica")
                try await transaction.query("UPDATE devices SET resource = convert_to('{\"resourceType\":\"Device\",\"status\":\"inactive\"}', 'UTF8')")
            }
            let failure = await #expect(throws: VerificationFailure.self) { _ = try await LedgerVerifier(pool: api.pool).verify() }
            #expect(failure?.table == "devices")
        }
    }

    /// A registration and an RFID batch retried with their Idempotency-Keys answer what the first
    /// ones did, the device as it was registered even after it moved, and write nothing again.
    @Test func retriedRegistrationsAndReaderBatchesAnswerTheFirstOnes() async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            let tag = "urn:epc:id:giai:0614141.4242"
            let body = #"{"resource":\#(DeviceWorld.device()),"type":"infusion-pump","location":"ICU","rfidTag":"\#(tag)"}"#
            let key = [("Idempotency-Key", "register-1")]
            let first = await api.call(.post, "/v1/devices", key: w.hospitalA, body: body, headers: key)
            #expect(first.status == 201, "\(first.text)")
            let id = try #require(first["id"])
            #expect(await w.move(id, "available").status == 201)
            let again = await api.call(.post, "/v1/devices", key: w.hospitalA, body: body, headers: key)
            #expect(again.status == 201 && again["id"] == id && again["status"] == "received" && again["updatedAt"] == first["updatedAt"], "\(again.text)")
            #expect(try await api.pool.query("SELECT count(*) AS n FROM devices")[0].decode("n", as: Int.self) == 1)

            let reads = #"{"readerId":"icu-door","reads":[{"epc":"\#(tag)","time":"\#(Timestamp.format(Date()))"},{"epc":"urn:epc:id:giai:0614141.99","time":"\#(Timestamp.format(Date()))"}]}"#
            let batchKey = [("Idempotency-Key", "reads-1")]
            let batch = await api.call(.post, "/v1/devices/rfid-reads", key: w.hospitalA, body: reads, headers: batchKey)
            let retried = await api.call(.post, "/v1/devices/rfid-reads", key: w.hospitalA, body: reads, headers: batchKey)
            #expect(batch.status == 201 && batch.json["unknownTags"] as? Int == 1 && batch.json["alertsRaised"] as? Int == 1, "\(batch.text)")
            for field in ["batch", "reads", "sightings", "devicesSeen", "unknownTags", "alertsRaised"] {
                #expect(String(describing: retried.json[field]) == String(describing: batch.json[field]), "\(field): \(retried.text)")
            }
            #expect(try await api.pool.query("SELECT count(*) AS n FROM rfid_batches")[0].decode("n", as: Int.self) == 1)
            let other = #"{"readerId":"icu-door","reads":[{"epc":"\#(tag)","time":"\#(Timestamp.format(Date()))"}]}"#
            #expect(await api.call(.post, "/v1/devices/rfid-reads", key: w.hospitalA, body: other, headers: batchKey).status == 409)
        }
    }

    @Test func repeatsOfATagAtAReaderCollapseWithinTheWindow() async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            let tag = "urn:epc:id:giai:0614141.5678"
            let id = try await w.registered(tag: tag)
            let start = Date().addingTimeInterval(-60)
            // Ten reads in three seconds are one sighting; six seconds on is another.
            var reads = (0..<10).map { (epc: tag, at: start.addingTimeInterval(Double($0) * 0.3)) }
            reads.append((tag, start.addingTimeInterval(6)))
            let first = await w.reads(w.hospitalA, reader: "icu-door", reads)
            #expect(first.status == 201, "\(first.text)")
            #expect(first.json["reads"] as? Int == 11 && first.json["sightings"] as? Int == 2, "\(first.text)")
            // Across batches too: 2 s after the last sighting is a repeat, 7 s after is not.
            let second = await w.reads(w.hospitalA, reader: "icu-door", [(tag, start.addingTimeInterval(8))])
            #expect(second.json["sightings"] as? Int == 0, "\(second.text)")
            let third = await w.reads(w.hospitalA, reader: "icu-door", [(tag, start.addingTimeInterval(13))])
            #expect(third.json["sightings"] as? Int == 1, "\(third.text)")
            // Another reader sees it afresh, and the device moves there. The hex of the tag is the same tag.
            let store = await w.reads(w.hospitalA, reader: "store-1", [("3474257BF40000000000162E", start.addingTimeInterval(14))])
            #expect(store.json["sightings"] as? Int == 1 && store.json["devicesSeen"] as? Int == 1, "\(store.text)")
            let read = await api.call(.get, "/v1/devices/\(id)", key: w.hospitalA)
            let seen = try #require(read.json["lastSeen"] as? [String: Any])
            #expect(seen["location"] as? String == "Store")
            let seenAt = try #require(Timestamp.parse(seen["at"] as? String ?? ""))
            #expect(abs(seenAt.timeIntervalSince(start.addingTimeInterval(14))) < 0.002, "\(seen)")
            #expect(try await api.pool.query("SELECT count(*) AS n FROM rfid_batches").first?.decode("n", as: Int64.self) == 4)
        }
    }

    @Test func rfidBatchesRefuseWhatTheyCannotReadAndChangeNothing() async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            let now = Date()
            let header = await w.reads(w.hospitalA, reader: "icu-door", [("E2801160600002040000ABCD", now)])
            #expect(header.status == 422 && header.errorCode == "unsupported_tag" && header.text.contains("reads[0]"), "\(header.text)")
            let urn = await w.reads(w.hospitalA, reader: "icu-door", [("urn:epc:id:sscc:0614141.1234567890", now)])
            #expect(urn.errorCode == "unsupported_tag", "\(urn.text)")
            let big = await w.reads(w.hospitalA, reader: "icu-door", (0...1000).map { _ in ("3474257BF40000000000162E", now) })
            #expect(big.status == 413 && big.errorCode == "batch_too_large" && big.text.contains("1001"), "\(big.text)")
            let unknownReader = await w.reads(w.hospitalA, reader: "nowhere", [("3474257BF40000000000162E", now)])
            #expect(unknownReader.status == 400, "\(unknownReader.text)")
            let badTime = await api.call(.post, "/v1/devices/rfid-reads", key: w.hospitalA,
                                         body: #"{"readerId":"icu-door","reads":[{"epc":"3474257BF40000000000162E","time":"yesterday"}]}"#)
            #expect(badTime.status == 422 && badTime.text.contains("reads[0].time"), "\(badTime.text)")
            let badAntenna = await api.call(.post, "/v1/devices/rfid-reads", key: w.hospitalA,
                                            body: #"{"readerId":"icu-door","reads":[{"epc":"3474257BF40000000000162E","time":"2026-01-01T00:00:00Z","antenna":1e300}]}"#)
            #expect(badAntenna.status == 422, "\(badAntenna.text)")
            let stored = try await api.pool.query("""
                SELECT (SELECT count(*) FROM rfid_batches) + (SELECT count(*) FROM rfid_sightings) + (SELECT count(*) FROM rfid_unknown_tags)
                       + (SELECT count(*) FROM device_alerts) AS n
                """).first?.decode("n", as: Int64.self)
            #expect(stored == 0, "no batch, sighting, tag or alert stored")
        }
    }

    @Test func unknownTagsAndDevicesAwayFromTheirOwnerRaiseAlertsOnce() async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            let tag = "urn:epc:id:giai:0614141.5678", stranger = "urn:epc:id:giai:4000001.111"
            let id = try await w.registered(tag: tag)
            let now = Date()
            // At home, among known tags: silent.
            _ = await w.reads(w.hospitalA, reader: "icu-door", [(tag, now)])
            #expect(await w.alerts(w.hospitalA).isEmpty)
            // A tag nobody registered: once per organization, however often it is read.
            _ = await w.reads(w.hospitalA, reader: "icu-door", [(stranger, now)])
            _ = await w.reads(w.hospitalA, reader: "store-1", [(stranger, now.addingTimeInterval(20))])
            let unknown = await w.alerts(w.hospitalA, kind: "unknown_tag")
            #expect(unknown.count == 1 && unknown.first?["epc"] as? String == stranger, "\(unknown)")
            // Seen at another hospital: both hear of it, once for the stay.
            _ = await w.reads(w.hospitalB, reader: "er-1", [(tag, now.addingTimeInterval(30))])
            _ = await w.reads(w.hospitalB, reader: "er-1", [(tag, now.addingTimeInterval(60))])
            let left = await w.alerts(w.hospitalA, kind: "left_owner")
            #expect(left.count == 1 && left.first?["device"] as? String == id, "\(left)")
            #expect(await w.alerts(w.hospitalB, kind: "left_owner").count == 1)
            #expect(await w.alerts(w.hospitalB, kind: "unknown_tag").isEmpty, "a registered device is no unknown tag")
            // Back home, then away again: a new stay, a new alert.
            _ = await w.reads(w.hospitalA, reader: "icu-door", [(tag, now.addingTimeInterval(90))])
            _ = await w.reads(w.hospitalB, reader: "er-1", [(tag, now.addingTimeInterval(120))])
            #expect(await w.alerts(w.hospitalA, kind: "left_owner").count == 2)
            #expect(await w.alerts(w.regulator).count == 3)
        }
    }

    @Test func devicesNotSeenAndRecalledDevicesAlertTheirOwner() async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            let tagged = try await w.registered(tag: "urn:epc:id:giai:0614141.5678")
            let other = try await w.registered(tag: "urn:epc:id:giai:0614141.5679")
            _ = try await w.registered()
            _ = await w.reads(w.hospitalA, reader: "icu-door", [("urn:epc:id:giai:0614141.5678", Date()), ("urn:epc:id:giai:0614141.5679", Date())])
            try await Task.sleep(for: SweepThrottle.interval)
            #expect(await w.alerts(w.hospitalA, kind: "not_seen").isEmpty, "seen just now")
            try await api.pool.query("UPDATE device_state SET last_seen_at = now() - interval '8 days', seen_at = now() - interval '8 days' WHERE device_id = \(tagged)")
            try await Task.sleep(for: SweepThrottle.interval)
            _ = await api.call(.get, "/v1/devices/alerts", key: w.hospitalA)
            let unseen = await w.alerts(w.hospitalA, kind: "not_seen")
            #expect(unseen.count == 1 && unseen.first?["device"] as? String == tagged && (unseen.first?["detail"] as? String)?.contains("ICU") == true,
                    "\(unseen)")
            try await Task.sleep(for: SweepThrottle.interval)
            #expect(await w.alerts(w.hospitalA, kind: "not_seen").count == 1, "once")
            // The likely-lost report.
            let report = await api.call(.get, "/v1/devices?notSeenSince=\(Timestamp.format(Date().addingTimeInterval(-86400)))", key: w.hospitalA)
            #expect(report.items.compactMap { $0["id"] as? String } == [tagged], "\(report.text)")
            _ = other

            // A recall of one lot marks exactly the devices of that DI and lot.
            let otherLot = try await w.registered(resource: World.device(carrier: "(01)00884521050122(10)LOT-9Z(21)SN7", di: World.gs1DI))
            let recall = await api.call(.post, "/v1/devices/recalls", key: w.manufacturer,
                                        body: #"{"di":"\#(World.gs1DI)","lots":["LOT-7A"],"reason":"battery may overheat"}"#)
            #expect(recall.status == 201 && recall.json["devicesMarked"] as? Int == 3, "\(recall.text)")
            #expect(await api.call(.get, "/v1/devices/\(otherLot)", key: w.hospitalA)["status"] == "received")
            #expect(await api.call(.get, "/v1/devices/\(tagged)", key: w.hospitalA)["status"] == "recalled")
            let recalled = await w.alerts(w.hospitalA, kind: "recalled")
            #expect(recalled.count == 3 && (recalled.first?["detail"] as? String)?.contains("battery") == true, "\(recalled)")
            #expect(await w.alerts(w.hospitalB, kind: "recalled").isEmpty)
            #expect(await w.move(tagged, "available").status == 409)
            #expect(await api.call(.post, "/v1/devices/recalls", key: w.hospitalA, body: #"{"di":"x","lots":[],"reason":"x"}"#).status == 403)
        }
    }

    @Test func inventoryAnswersTheOwnerAndAvailabilitySaysWhereOneIs() async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            var ids: [String] = []
            for _ in 0..<3 { ids.append(try await w.registered()) }
            let pump = try await w.registered(resource: World.device(carrier: nil, di: nil))
            _ = await w.register(key: w.hospitalB, location: "ER")
            for id in ids.prefix(2) { _ = await w.move(id, "available", extra: #","location":"Store""#) }
            let available = await api.call(.get, "/v1/devices/availability?di=\(World.gs1DI)", key: w.hospitalA)
            #expect(available.json["owned"] as? Int == 3 && available.json["available"] as? Int == 2, "\(available.text)")
            let at = try #require(available.json["availableAt"] as? [[String: Any]])
            #expect(at.first?["location"] as? String == "Store" && at.first?["count"] as? Int == 2)
            #expect(await api.call(.get, "/v1/devices/availability?di=\(World.gs1DI)", key: w.regulator).json["owned"] as? Int == 4)
            let mine = await api.call(.get, "/v1/devices?status=available&di=\(World.gs1DI)", key: w.hospitalA)
            #expect(Set(mine.items.compactMap { $0["id"] as? String }) == Set(ids.prefix(2)))
            let page = await api.call(.get, "/v1/devices?limit=2", key: w.hospitalA)
            #expect(page.items.count == 2 && page["next"] != nil)
            let rest = await api.call(.get, "/v1/devices?limit=2&after=\(page["next"] ?? "")", key: w.hospitalA)
            #expect(rest.items.count == 2 && rest.json["next"] is NSNull)
            #expect(await api.call(.get, "/v1/devices?type=infusion-pump&location=ER", key: w.hospitalA).items.isEmpty)
            #expect(await api.call(.get, "/v1/devices?owner=\(w.orgB)", key: w.hospitalA).status == 403)
            #expect(await api.call(.get, "/v1/devices?owner=\(w.orgB)", key: w.regulator).items.count == 1)
            #expect(await api.call(.get, "/v1/devices?status=broken", key: w.hospitalA).status == 400)
            _ = pump
            // The manufacturer registers a device it ships to hospital A: A owns it.
            let shipped = await w.register(key: w.manufacturer, location: "0614141000012", extra: #","owner":"\#(w.orgA)""#)
            #expect(shipped.status == 201 && shipped["owner"] == w.orgA && shipped["registeredBy"] == w.manufacturerOrg, "\(shipped.text)")
            #expect(await w.register(key: w.manufacturer, location: "0614141000012").status == 400, "a manufacturer names the owner")
        }
    }

    // MARK: Telemetry

    @Test func signedTelemetryIsVerifiedSealedAnchoredAndReadableWithItsSignature() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            let w = try await World.make(api)
            let key = try Ed25519PrivateKey()
            let (device, keyId, deviceKey) = try await w.monitor(key)
            let now = Int64(Date().timeIntervalSince1970)
            let signed = try (1...3).map { counter in
                try SignedObservation.sign(w.observation(device: device, value: Double(70 + counter)), keyId: keyId, deviceId: device, counter: Int64(counter),
                                           issuedAt: now, with: key)
            }
            let accepted = await w.send(signed, key: deviceKey)
            #expect(accepted.status == 201 && accepted.json["accepted"] as? Int == 3, "\(accepted.text)")
            let ids = try #require(accepted.json["observations"] as? [[String: Any]]).compactMap { $0["id"] as? String }
            #expect(ids.count == 3)
            // Sealed: the JWS is nowhere in clear.
            let sealed = try await api.pool.query("SELECT sealed FROM telemetry_observations ORDER BY position").all.map { try $0.bytes("sealed") }
            #expect(sealed.count == 3 && !sealed.contains { String(decoding: $0, as: UTF8.self).contains(signed[0].prefix(20)) })
            // The monitoring hospital and the patient read each reading with its original JWS, which verifies with the device's key.
            for reply in [await api.call(.get, "/v1/patients/\(w.patientId)/telemetry", key: w.hospitalA),
                          await api.call(.get, "/v1/me/telemetry", key: w.patientKey)] {
                #expect(reply.status == 200 && reply.items.count == 3, "\(reply.text)")
                let jws = reply.items.compactMap { $0["jws"] as? String }
                #expect(jws == signed)
                for text in jws { #expect(try SignedObservation(compact: text).verifies(with: key.publicKey)) }
                #expect((reply.items.first?["observation"] as? [String: Any])?["resourceType"] as? String == "Observation")
            }
            #expect(await api.call(.get, "/v1/patients/\(w.patientId)/telemetry", key: w.hospitalB).status == 404, "no consent, no custody")
            // A reading's proof: the batch entry in a signed tree head, the reading's path to the batch root; offline too.
            var proof = await api.call(.get, "/v1/telemetry/\(ids[1])/proof", key: w.patientKey)
            for _ in 0..<100 where proof.status != 200 {
                try await Task.sleep(for: .milliseconds(100))
                proof = await api.call(.get, "/v1/telemetry/\(ids[1])/proof", key: w.patientKey)
            }
            #expect(proof.status == 200, "\(proof.text)")
            let receipt = try JSONDecoder().decode(Receipt.self, from: Data(proof.response.body))
            let entry = try receipt.verify(publicKey: api.ledger.signer.key.publicKey)
            #expect(entry["type"] == .string("telemetry.batch") && entry["hash"] == .string(accepted["root"] ?? ""))
            #expect(receipt.member?.digest == Base64.encode(SHA256.digest(Array(signed[1].utf8))) && receipt.member?.index == 1)
            #expect(await api.call(.get, "/v1/telemetry/\(ids[1])/proof", key: w.hospitalB).status == 404)
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("telemetry-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let keyFile = folder.appendingPathComponent("key.pub"), receiptFile = folder.appendingPathComponent("receipt.json")
            try api.ledger.signer.verifier.text.write(to: keyFile, atomically: true, encoding: .utf8)
            try Data(proof.response.body).write(to: receiptFile)
            let offline = try await runProcess(RepositoryPaths.executable, ["verify", "--receipt", receiptFile.path, "--key", keyFile.path], environment: [:])
            #expect(offline.status == 0, "\(offline.stderr)")
            // A forged member digest no longer reaches the root.
            var forged = try #require(try JSONSerialization.jsonObject(with: Data(proof.response.body)) as? [String: Any])
            var member = try #require(forged["member"] as? [String: Any])
            member["digest"] = Base64.encode(SHA256.digest(Array("forged".utf8)))
            forged["member"] = member
            try JSONSerialization.data(withJSONObject: forged).write(to: receiptFile)
            let refused = try await runProcess(RepositoryPaths.executable, ["verify", "--receipt", receiptFile.path, "--key", keyFile.path], environment: [:])
            #expect(refused.status != 0)
            try await waitUntil("everything sequenced", deadline: .seconds(20)) {
                (try? await api.pool.query("SELECT count(*) AS n FROM ledger_queue").first?.decode("n", as: Int64.self)) == 0
            }
            await api.ledger.stop()
            let report = try await LedgerVerifier(pool: api.pool).verify()
            #expect(report.anchoredObjects["telemetry.batch"] == 1 && report.anchoredObjects["device.key"] == 1, "\(report.anchoredObjects)")
        }
    }

    @Test func tamperedReplayedMiskeyedAndUnsignedReadingsAreRefusedAndNothingIsStored() async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            let key = try Ed25519PrivateKey(), stranger = try Ed25519PrivateKey()
            let (device, keyId, deviceKey) = try await w.monitor(key, interval: 3600)
            let now = Int64(Date().timeIntervalSince1970)
            func sign(_ counter: Int64, with signer: Ed25519PrivateKey? = nil, kid: String? = nil, dev: String? = nil, iat: Int64? = nil,
                      observation: JSONValue? = nil) throws -> String {
                try SignedObservation.sign(observation ?? w.observation(device: dev ?? device), keyId: kid ?? keyId, deviceId: dev ?? device,
                                           counter: counter, issuedAt: iat ?? now, with: signer ?? key)
            }
            #expect(await w.send([try sign(5)], key: deviceKey).status == 201)
            func refused(_ compact: String, key apiKey: String? = nil) async throws -> (Int, String?) {
                let before = try await w.storedReadings()
                let reply = await w.send([try sign(100), compact], key: apiKey ?? deviceKey)
                #expect(try await w.storedReadings() == before, "nothing stored: \(reply.text)")
                return (reply.status, reply.errorCode)
            }
            // Tampered: the payload changed after signing.
            let good = try sign(6)
            let parts = good.split(separator: ".").map(String.init)
            let altered = Base64URL.encode(JCS.canonicalize(w.observation(device: device, value: 190)))
            #expect(try await refused([parts[0], altered, parts[2]].joined(separator: ".")) == (401, "bad_signature"))
            // Replayed, and not above the last accepted counter.
            #expect(try await refused(try sign(5)) == (409, "counter_replayed"))
            #expect(try await refused(try sign(3)) == (409, "counter_replayed"))
            // Mis-keyed: signed by another key under the registered kid; an unknown kid.
            #expect(try await refused(try sign(7, with: stranger)) == (401, "bad_signature"))
            #expect(try await refused(try sign(7, kid: "dky_unknown")) == (401, "unknown_device_key"))
            // alg none, and any algorithm but EdDSA.
            for alg in ["none", "HS256", "ES256"] {
                let header = Base64URL.encode(Array(#"{"alg":"\#(alg)","kid":"\#(keyId)","dev":"\#(device)","ctr":8,"iat":\#(now)}"#.utf8))
                #expect(try await refused("\(header).\(parts[1]).\(alg == "none" ? "" : parts[2])") == (422, "unsupported_algorithm"), "\(alg)")
            }
            // Another device's, another patient's, out of the skew window.
            let otherPatient = w.observation(device: device, patient: "pat_someone_else")
            #expect(try await refused(try sign(9, observation: otherPatient)) == (422, "patient_mismatch"))
            let otherDevice = w.observation(device: "dev_other")
            #expect(try await refused(try sign(9, observation: otherDevice)) == (422, "device_mismatch"))
            #expect(try await refused(try sign(9, iat: now - 3600)) == (422, "outside_skew_window"))
            #expect(try await refused(try sign(9, dev: "dev_other")) == (422, "device_mismatch"), "a device key speaks for its own device only")
            #expect(try await refused("not.a.jws") == (422, "malformed_signature"))
            // Revoked: its readings are refused from then on.
            #expect(await api.call(.post, "/v1/devices/\(device)/keys/\(keyId)/revoke", key: w.hospitalA).status == 200)
            #expect(try await refused(try sign(10)) == (401, "device_key_revoked"))
            #expect(try await w.storedReadings() == 1)
            // Rejected signatures are counted per device and alert the owner (the first of them).
            let metrics = await api.call(.get, "/metrics", key: nil, client: "127.0.0.1")
            #expect(metrics.text.contains("careledger_telemetry_rejected_signatures_total{device=\"\(device)\"} 2"), "\(metrics.text.suffix(600))")
            let bad = await w.alerts(w.hospitalA, kind: "bad_signature")
            #expect(bad.count == 1 && bad.first?["device"] as? String == device, "\(bad)")
            // Too many readings in one request.
            let many = await w.send(Array(repeating: good, count: 1001), key: deviceKey)
            #expect(many.status == 413 && many.errorCode == "batch_too_large", "\(many.text)")
        }
    }

    @Test func keysRotateAndTheOldOneStopsVerifying() async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            let first = try Ed25519PrivateKey(), second = try Ed25519PrivateKey()
            let (device, firstId, deviceKey) = try await w.monitor(first)
            let pemText = World.pem(second.publicKey).replacingOccurrences(of: "\n", with: "\\n")
            let rotated = try await w.expect(201, .post, "/v1/devices/\(device)/keys", w.hospitalA, #"{"publicKeyPem":"\#(pemText)","replaces":"\#(firstId)"}"#)
            let secondId = try #require(rotated["id"])
            let now = Int64(Date().timeIntervalSince1970)
            let old = try SignedObservation.sign(w.observation(device: device), keyId: firstId, deviceId: device, counter: 1, issuedAt: now, with: first)
            #expect(await w.send([old], key: deviceKey).errorCode == "device_key_revoked")
            let new = try SignedObservation.sign(w.observation(device: device), keyId: secondId, deviceId: device, counter: 1, issuedAt: now, with: second)
            #expect(await w.send([new], key: deviceKey).status == 201)
            let keys = await api.call(.get, "/v1/devices/\(device)/keys", key: w.hospitalA).items
            #expect(keys.count == 2 && keys.first?["replacedBy"] as? String == secondId)
            #expect(await api.call(.post, "/v1/devices/\(device)/keys", key: w.hospitalA, body: #"{"publicKeyPem":"not a key"}"#).status == 400)
            #expect(await api.call(.post, "/v1/devices/\(device)/keys", key: w.hospitalB, body: #"{"publicKeyPem":"\#(pemText)"}"#).status == 404)
        }
    }

    @Test func aDeviceSilentPastItsIntervalRaisesATelemetryGap() async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            let key = try Ed25519PrivateKey()
            let (quiet, _, _) = try await w.monitor(key, interval: 60)
            let (chatty, chattyKey, chattyAPIKey) = try await w.monitor(key, interval: 60)
            _ = try await w.registered()
            try await Task.sleep(for: SweepThrottle.interval)
            #expect(await w.alerts(w.hospitalA, kind: "telemetry_gap").isEmpty, "within the interval")
            try await api.pool.query("UPDATE devices SET created_at = now() - interval '2 minutes' WHERE telemetry_interval IS NOT NULL")
            let reading = try SignedObservation.sign(w.observation(device: chatty), keyId: chattyKey, deviceId: chatty, counter: 1,
                                                     issuedAt: Int64(Date().timeIntervalSince1970), with: key)
            #expect(await w.send([reading], key: chattyAPIKey).status == 201)
            try await Task.sleep(for: SweepThrottle.interval)
            _ = await api.call(.get, "/v1/devices/alerts", key: w.hospitalA)
            let gaps = await w.alerts(w.hospitalA, kind: "telemetry_gap")
            #expect(gaps.count == 1 && gaps.first?["device"] as? String == quiet, "\(gaps)")
        }
    }

    /// A JWS made by OpenSSL's command line (not our signer) over the canonical observation.
    @Test func aReadingSignedWithOpenSSLIsAccepted() async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("jws-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let privatePath = folder.appendingPathComponent("device.pem").path, publicPath = folder.appendingPathComponent("device.pub").path
            #expect(try run("/usr/bin/openssl", ["genpkey", "-algorithm", "ed25519", "-out", privatePath]).status == 0)
            #expect(try run("/usr/bin/openssl", ["pkey", "-in", privatePath, "-pubout", "-out", publicPath]).status == 0)
            let publicPEM = try String(contentsOfFile: publicPath, encoding: .utf8)
            let device = try await w.registered()
            _ = await w.move(device, "available")
            _ = await w.move(device, "in_use", extra: #","patientId":"\#(w.patientId)""#)
            let added = try await w.expect(201, .post, "/v1/devices/\(device)/keys", w.hospitalA,
                                           #"{"publicKeyPem":"\#(publicPEM.replacingOccurrences(of: "\n", with: "\\n"))"}"#)
            let keyId = try #require(added["id"])
            let header = #"{"alg":"EdDSA","kid":"\#(keyId)","dev":"\#(device)","ctr":1,"iat":\#(Int64(Date().timeIntervalSince1970))}"#
            let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(JCS.canonicalize(w.observation(device: device)))
            let inputPath = folder.appendingPathComponent("input").path, signaturePath = folder.appendingPathComponent("sig").path
            try input.write(toFile: inputPath, atomically: true, encoding: .utf8)
            let signing = try run("/usr/bin/openssl", ["pkeyutl", "-sign", "-inkey", privatePath, "-rawin", "-in", inputPath, "-out", signaturePath])
            #expect(signing.status == 0, "\(signing.output)")
            let signature = Base64URL.encode(Array(try Data(contentsOf: URL(fileURLWithPath: signaturePath))))
            let reply = await w.send([input + "." + signature], key: w.hospitalA)
            #expect(reply.status == 201, "\(reply.text)")
        }
    }

    /// A JWS made by a standard JOSE library from PyPI (jwcrypto), over the FHIR example observation.
    @Test func aReadingSignedWithAStandardJOSELibraryIsAccepted() async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            let device = try await w.registered()
            _ = await w.move(device, "available")
            _ = await w.move(device, "in_use", extra: #","patientId":"\#(w.patientId)""#)
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("jose-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            // The official example, pointed at our device and patient (in memory; the fixture is untouched).
            let fixture = try JSONParser.parse(Array(try Data(contentsOf: SharedFiles.url("fixtures/fhir/observation-example-bloodpressure.json"))))
            guard case .object(var members) = fixture else { throw HarnessError("not an object") }
            members = members.filter { $0.key != "subject" && $0.key != "device" }
            members.append(("subject", .object([("reference", .string("Patient/\(w.patientId)"))])))
            members.append(("device", .object([("reference", .string("Device/\(device)"))])))
            let payloadPath = folder.appendingPathComponent("payload.json")
            try Data(JCS.canonicalize(.object(members))).write(to: payloadPath)
            let scriptPath = folder.appendingPathComponent("sign.py").path
            // jwcrypto makes the device's key; its PEM is registered, and it signs under the key id we return.
            let keygen = try run("/usr/bin/env", ["python3", "-c", "from jwcrypto import jwk; import sys; k=jwk.JWK.generate(kty='OKP', crv='Ed25519'); open(sys.argv[1],'w').write(k.export()); print(k.export_to_pem(private_key=False, password=None).decode())", folder.appendingPathComponent("key.jwk").path])
            guard keygen.status == 0 else {
                Issue.record("jwcrypto is not installed (deploy/lib/common.sh installs it): \(keygen.output)")
                return
            }
            let added = try await w.expect(201, .post, "/v1/devices/\(device)/keys", w.hospitalA,
                                           #"{"publicKeyPem":"\#(keygen.output.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n", with: "\\n"))"}"#)
            let keyId = try #require(added["id"])
            let signer = """
                import json, sys, time
                from jwcrypto import jwk, jws
                key = jwk.JWK.from_json(open(sys.argv[1]).read())
                header = {"alg": "EdDSA", "kid": sys.argv[3], "dev": sys.argv[4], "ctr": 1, "iat": int(time.time())}
                token = jws.JWS(open(sys.argv[2], "rb").read())
                token.add_signature(key, None, protected=json.dumps(header))
                print(token.serialize(compact=True))
                """
            try signer.write(toFile: scriptPath, atomically: true, encoding: .utf8)
            let signed = try run("/usr/bin/env", ["python3", scriptPath, folder.appendingPathComponent("key.jwk").path, payloadPath.path, keyId, device])
            #expect(signed.status == 0, "\(signed.output)")
            let compact = signed.output.trimmingCharacters(in: .whitespacesAndNewlines)
            let reply = await w.send([compact], key: w.hospitalA)
            #expect(reply.status == 201, "\(reply.text)")
            let read = await api.call(.get, "/v1/me/telemetry", key: w.patientKey)
            #expect(read.items.first?["jws"] as? String == compact)
        }
    }
}
