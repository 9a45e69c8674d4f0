@testable import CareLedger
import Foundation
import GS1
import Ledger
import Testing
import TestSupport

@Suite(.serialized) struct SupplyTests {
    typealias World = SupplyWorld

    static let fixtures: [String] = (try? SharedFiles.files(under: "fixtures/epcis", extension: "jsonld"))?
        .filter { !$0.path.contains("event-hash") }.map(\.lastPathComponent) ?? []

    @Test(arguments: fixtures)
    func everyFixtureIsCapturedUnchanged(name: String) async throws {
        try await APIHarness.with { api in
            let world = try await World.make(api)
            let text = try String(contentsOf: SharedFiles.url("fixtures/epcis/\(name)"), encoding: .utf8)
            let reply = await api.call(.post, "/v1/epcis/capture", key: world.manufacturer, body: text,
                                       headers: [("Content-Type", "application/ld+json"), ("GS1-EPCIS-Version", "2.0.0"), ("GS1-CBV-Version", "2.0.0")])
            #expect(reply.status == 202, "\(name): \(reply.text)")
            #expect(reply.response.headers.first(name: "GS1-EPCIS-Version") == "2.0.0")
            #expect(reply.response.headers.first(name: "Location")?.hasPrefix("/v1/epcis/capture/cap_") == true)
            #expect(reply["status"] == "success", "\(name): \(reply.text)")
            let events = try EPCISReader.read(try JSONParser.parse(Array(text.utf8)))
            #expect(reply.json["capturedCount"] as? Int == events.count)
            for event in events {
                let read = await api.call(.get, "/v1/epcis/events/\(DigitalLink.percentEncode(event.hashID))", key: world.manufacturer)
                #expect(read.status == 200, "\(name): \(read.text)")
                var back = try JSONParser.parse(read.response.body)
                if event.senderEventID == nil, case .object(let members) = back {
                    #expect(back["eventID"]?.stringValue == event.hashID)
                    back = .object(members.filter { $0.key != "eventID" })
                }
                // Every field as sent (member order aside): sensor data, extensions, error declarations.
                #expect(JCS.canonicalize(back) == JCS.canonicalize(event.json), "\(name)")
                if let sent = event.senderEventID {
                    let bySender = await api.call(.get, "/v1/epcis/events/\(DigitalLink.percentEncode(sent))", key: world.manufacturer)
                    #expect(bySender.status == 200)
                }
            }
            let job = await api.call(.get, "/v1/epcis/capture/\(reply["captureID"] ?? "")", key: world.manufacturer)
            #expect(job["status"] == "success")
        }
    }

    @Test func notEPCISIsRefusedWithThePathOfTheProblem() async throws {
        try await APIHarness.with { api in
            let world = try await World.make(api)
            let bad = await api.call(.post, "/v1/epcis/capture", key: world.manufacturer, body: "{not json")
            #expect(bad.status == 400)
            let wrong = World.document([#"{"type":"ObjectEvent","eventTime":"2026-01-01T00:00:00Z","eventTimeZoneOffset":"+00:00","action":"SHIP"}"#])
            let invalid = await api.call(.post, "/v1/epcis/capture", key: world.manufacturer, body: wrong)
            #expect(invalid.status == 422)
            #expect((invalid.json["error"] as? [String: Any])?["message"] as? String == "epcisBody.eventList[0].action: \"SHIP\" is not ADD, OBSERVE or DELETE.")
            let version = await api.call(.post, "/v1/epcis/capture", key: world.manufacturer, body: World.document([]), headers: [("GS1-EPCIS-Version", "1.2")])
            #expect(version.status == 406)
            let behaviour = await api.call(.post, "/v1/epcis/capture", key: world.manufacturer, body: World.document([]), headers: [("GS1-Capture-Error-Behaviour", "maybe")])
            #expect(behaviour.status == 400)
            let media = await api.call(.post, "/v1/epcis/capture", key: world.manufacturer, body: "x", headers: [("Content-Type", "text/xml")])
            #expect(media.status == 415 || media.status == 400)
            // Nothing was stored by any of them.
            #expect(try await api.pool.query("SELECT count(*) AS n FROM epcis_events").first?.decode("n", as: Int64.self) == 0)
            // A hospital pharmacy may capture; an insurer may not.
            let insurerOrg = try await api.createOrg("Insurer", "insurer")
            let insurer = try await api.issueKey(insurerOrg, "insurer").apiKey
            #expect(await api.call(.post, "/v1/epcis/capture", key: insurer, body: World.document([])).status == 403)
        }
    }

    @Test func rollbackIsAllOrNothingAndProceedSkipsTheBadEvent() async throws {
        try await APIHarness.with { api in
            let world = try await World.make(api)
            try await world.commission(["R1"])
            let again = World.event([World.sgtin("R2")], bizStep: "commissioning", at: world.plant, action: "ADD")
            // The same event twice in one document: under rollback nothing is stored.
            let failed = try await world.capture(world.manufacturer, [again, again])
            #expect(failed["status"] == "failed")
            #expect((failed.json["errors"] as? [[String: Any]])?.first?["error"] as? String == "duplicate_event")
            #expect(try await world.pack("R2") == nil)
            let partial = try await world.capture(world.manufacturer, [again, again], behaviour: "proceed")
            #expect(partial["status"] == "partial")
            #expect(partial.json["capturedCount"] as? Int == 1)
            #expect(try await world.pack("R2")?.state == .active)
        }
    }

    /// A capture retried with its Idempotency-Key answers the first job, alerts raised included,
    /// and captures nothing again; the key with another document is refused.
    @Test func aRetriedCaptureAnswersTheFirstJob() async throws {
        try await APIHarness.with { api in
            let world = try await World.make(api)
            try await world.commission(["I1"])
            // Commissioning I1 again is stored, marked and raises an alert.
            let twice = World.document([World.event([World.sgtin("I1")], bizStep: "commissioning", at: world.plant, action: "ADD")])
            let headers = [("GS1-EPCIS-Version", "2.0.0"), ("Idempotency-Key", "capture-1")]
            let first = await api.call(.post, "/v1/epcis/capture", key: world.manufacturer, body: twice, headers: headers)
            let again = await api.call(.post, "/v1/epcis/capture", key: world.manufacturer, body: twice, headers: headers)
            #expect(first.status == 202 && first.json["alertsRaised"] as? Int == 1, "\(first.text)")
            #expect(again.status == 202 && again["captureID"] == first["captureID"] && again.json["alertsRaised"] as? Int == 1, "\(again.text)")
            #expect(again["status"] == first["status"] && again["createdAt"] == first["createdAt"] && again["finishedAt"] == first["finishedAt"])
            let other = World.document([World.event([World.sgtin("I2")], bizStep: "commissioning", at: world.plant, action: "ADD")])
            #expect(await api.call(.post, "/v1/epcis/capture", key: world.manufacturer, body: other, headers: headers).status == 409)
            #expect(try await api.pool.query("SELECT count(*) AS n FROM epcis_captures")[0].decode("n", as: Int.self) == 2)
            #expect(try await api.pool.query("SELECT count(*) AS n FROM supply_alerts")[0].decode("n", as: Int.self) == 1)
        }
    }

    @Test func custodyFollowsTheRulesAndEveryBreakRaisesAnAlert() async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            // Commissioning by the owner of the prefix: silent.
            try await w.commission(["A1", "A2", "A3"])
            #expect(try await w.pack("A1")?.custodianOrg == w.manufacturerOrg)
            #expect(await w.alerts(w.regulator).isEmpty)
            // By a non-owner, and twice: both marked, both alerted, nothing moved.
            try await w.capture(w.otherMaker, [World.event([World.sgtin("B1")], bizStep: "commissioning", at: w.otherPlant, action: "ADD")])
            #expect(await w.alerts(w.regulator, kind: "commissioned_by_non_owner").count == 1)
            #expect(try await w.pack("B1") == nil)
            try await w.capture(w.manufacturer, [World.event([World.sgtin("A1")], bizStep: "commissioning", at: w.plant, action: "ADD", extra: #","example:again":"1""#)])
            #expect(await w.alerts(w.manufacturer, kind: "commissioned_twice").count == 1)
            // An event at someone else's site.
            try await w.capture(w.manufacturer, [World.event([World.sgtin("A1")], bizStep: "inspecting", at: w.warehouse)])
            #expect(await w.alerts(w.manufacturer, kind: "foreign_location").count == 1)
            // Shipping by a non-custodian; then by the custodian to the distributor.
            try await w.capture(w.distributor, [World.event([World.sgtin("A1")], bizStep: "shipping", at: w.warehouse, to: w.shop)])
            #expect(await w.alerts(w.manufacturer, kind: "shipped_by_non_custodian").count == 1)
            try await w.capture(w.manufacturer, [World.event([World.sgtin("A1"), World.sgtin("A2")], bizStep: "shipping", at: w.plant, to: w.warehouse)])
            #expect(try await w.pack("A1")?.state == .inTransit)
            #expect(try await w.pack("A1")?.pendingReceiver == w.distributorOrg)
            // Receiving without a shipment to the receiver: the pharmacy was not sent A1.
            try await w.capture(w.pharmacy, [World.event([World.sgtin("A1")], bizStep: "receiving", at: w.shop)])
            #expect(await w.alerts(w.pharmacy, kind: "received_without_shipment").count == 1)
            // The distributor receives: custody moves, silently.
            let before = await w.alerts(w.regulator).count
            try await w.capture(w.distributor, [World.event([World.sgtin("A1"), World.sgtin("A2")], bizStep: "receiving", at: w.warehouse)])
            #expect(try await w.pack("A1")?.custodianOrg == w.distributorOrg)
            #expect(try await w.pack("A1")?.state == .active)
            // Packing into a case moves custody of everything inside with the case.
            let sscc = World.sscc("1000000017")
            try await w.capture(w.distributor, [World.event([World.sgtin("A1"), World.sgtin("A2")], bizStep: "packing", at: w.warehouse, action: "ADD",
                                                             type: "AggregationEvent", extra: #","parentID":"\#(sscc)""#)])
            let unit = EPCISReader.canonical(sscc)
            #expect(try await w.pack("A1")?.parent == unit)
            try await w.capture(w.distributor, [#"{"type":"ObjectEvent","eventTime":"2026-06-02T00:00:00Z","eventTimeZoneOffset":"+00:00","action":"OBSERVE","bizStep":"shipping","epcList":["\#(sscc)"],"readPoint":{"id":"\#(World.site(w.warehouse))"},"destinationList":[{"type":"owning_party","destination":"\#(World.party(w.shop))"}]}"#])
            try await w.capture(w.pharmacy, [#"{"type":"ObjectEvent","eventTime":"2026-06-03T00:00:00Z","eventTimeZoneOffset":"+00:00","action":"OBSERVE","bizStep":"receiving","epcList":["\#(sscc)"],"readPoint":{"id":"\#(World.site(w.shop))"}}"#])
            #expect(try await w.pack("A2")?.custodianOrg == w.pharmacyOrg)
            #expect(await w.alerts(w.regulator).count == before)
            // Dispensing ends the chain; a second dispense and any later event are alerts.
            try await w.capture(w.pharmacy, [World.event([World.sgtin("A1")], bizStep: "dispensing", at: w.shop)])
            #expect(try await w.pack("A1")?.state == .dispensed)
            #expect(await w.alerts(w.regulator).count == before)
            try await w.capture(w.pharmacy, [World.event([World.sgtin("A1")], bizStep: "dispensing", at: w.shop)])
            #expect(await w.alerts(w.pharmacy, kind: "dispensed_twice").count == 1)
            try await w.capture(w.pharmacy, [World.event([World.sgtin("A1")], bizStep: "shipping", at: w.shop, to: w.shop2)])
            #expect(await w.alerts(w.pharmacy, kind: "event_after_end").count == 1)
            // Stolen ends it too.
            try await w.capture(w.manufacturer, [World.event([World.sgtin("A3")], bizStep: "inspecting", at: w.plant, disposition: "stolen")])
            #expect(try await w.pack("A3")?.state == .stolen)
            // Marked events are stored with the rule they broke.
            let marked = try await api.pool.query("SELECT count(*) AS n FROM epcis_events WHERE cardinality(violations) > 0").first?.decode("n", as: Int64.self)
            #expect(marked == 7)
            // Visibility: the other manufacturer sees none of these events; the pharmacy sees A1's.
            let seen = await api.call(.get, "/v1/epcis/events?MATCH_epc=\(DigitalLink.percentEncode(World.sgtin("A1")))", key: w.otherMaker)
            #expect(seen.status == 200)
            #expect(try Self.eventList(seen).isEmpty)
            let pharmacySees = await api.call(.get, "/v1/epcis/events?MATCH_epc=\(DigitalLink.percentEncode(World.sgtin("A1")))", key: w.pharmacy)
            #expect(try Self.eventList(pharmacySees).count >= 5)
        }
    }

    struct SupplyReceipts: Decodable {
        let items: [Receipt]
    }

    static func eventList(_ reply: APIHarness.Reply) throws -> [JSONValue] {
        guard case .array(let events)? = try JSONParser.parse(reply.response.body)["epcisBody"]?["queryResults"]?["resultsBody"]?["eventList"] else {
            throw HarnessError(reply.text)
        }
        return events
    }

    @Test func concurrentShipmentsOfOnePackMoveCustodyOnce() async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            for round in 0..<5 {
                let serial = "C\(round)"
                try await w.commission([serial])
                async let first = w.capture(w.manufacturer, [World.event([World.sgtin(serial)], bizStep: "shipping", at: w.plant, to: w.warehouse)])
                async let second = w.capture(w.manufacturer, [World.event([World.sgtin(serial)], bizStep: "shipping", at: w.plant, to: w.shop)])
                _ = try await (first, second)
                let pack = try #require(try await w.pack(serial))
                #expect(pack.state == .inTransit)
                let shipments = try await api.pool.query("SELECT count(*) AS n FROM supply_shipments WHERE epc = \(pack.epc)").first?.decode("n", as: Int64.self)
                #expect(shipments == 1)
                let refused = await w.alerts(w.manufacturer, kind: "shipped_by_non_custodian").filter { ($0["epc"] as? String) == pack.epc }
                #expect(refused.count == 1)
            }
        }
    }

    @Test func verificationAnswersInBothShapes() async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            try await w.commission(["V1", "V2"], lot: "L7", expiry: "2030-06-30")
            // Every identifier form, and lot and expiry as given.
            for form in [World.sgtin("V1"), "https://id.gs1.org/01/\(World.gtin)/21/V1", "(01)\(World.gtin)(17)300630(10)L7(21)V1",
                         "01\(World.gtin)17300630" + "10L7\u{1D}21V1"] {
                let reply = await w.verify(form)
                #expect(reply["status"] == "verified", "\(form): \(reply.text)")
                #expect(reply["custodian"] == w.manufacturerOrg)
            }
            let mismatch = await w.verify("(01)\(World.gtin)(17)300631(10)L7(21)V1")
            #expect(mismatch.status == 422)   // 31 June does not exist
            let wrongLot = await w.verify("(01)\(World.gtin)(10)L8(21)V1")
            #expect(wrongLot["status"] == "suspect")
            let lms = await api.call(.get, "/v1/supply/verify/gtin/\(World.gtin)/lot/L8/ser/V1?exp=300630&context=dscsaSaleableReturn&reqGLN=\(w.shop)&corrUUID=abc", key: w.pharmacy)
            #expect(lms.status == 200)
            let data = lms.json["data"] as? [String: Any]
            #expect(data?["verified"] as? Bool == false)
            #expect(data?["additionalInfo"] as? String == "No_match_GTIN_Serial_Lot_Expiry")
            #expect(lms["corrUUID"] == "abc")
            let good = await api.call(.get, "/v1/supply/verify/gtin/\(World.gtin)/lot/L7/ser/V1?exp=300630", key: w.pharmacy)
            #expect((good.json["data"] as? [String: Any])?["verified"] as? Bool == true)
            // A serial never commissioned: unknown, and its manufacturer hears of it.
            #expect(await w.verify(World.sgtin("NEVER"))["status"] == "unknown")
            #expect(await w.alerts(w.manufacturer, kind: "unknown_serial_verified").count == 1)
            // A recall answers from the next request, and the custodian gets an alert.
            let recall = await api.call(.post, "/v1/supply/recalls", key: w.manufacturer, body: #"{"gtin":"\#(World.gtin)","lots":["L7"],"reason":"sterility"}"#)
            #expect(recall.status == 201, "\(recall.text)")
            #expect(recall.json["affectedPacks"] as? Int == 2)
            #expect(await w.verify(World.sgtin("V1"))["status"] == "recalled")
            #expect(await w.alerts(w.manufacturer, kind: "recall").count == 2)
            // Another manufacturer may not recall our GTIN; a regulator may.
            #expect(await api.call(.post, "/v1/supply/recalls", key: w.otherMaker, body: #"{"gtin":"\#(World.gtin)","lots":["L7"],"reason":"x"}"#).status == 403)
            // A recalled lot moving on raises an alert but still moves.
            try await w.capture(w.manufacturer, [World.event([World.sgtin("V2")], bizStep: "shipping", at: w.plant, to: w.warehouse)])
            #expect(await w.alerts(w.manufacturer, kind: "recalled_moving").count == 1)
            #expect(try await w.pack("V2")?.state == .inTransit)
            // Bad identifiers say why.
            let bad = await w.verify("(01)04012345111119(21)V1")
            #expect(bad.status == 422)
            #expect(bad.text.contains("gtin_check_digit"))
        }
    }

    @Test func alertsArriveOnTheFeedAndAreResolvedOnce() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            let w = try await World.make(api)
            try await w.commission(["F1"])
            let waiting = Task { await api.call(.get, "/v1/supply/alerts?wait=10", key: w.manufacturer) }
            try await Task.sleep(for: .milliseconds(200))
            try await w.capture(w.otherMaker, [World.event([World.sgtin("F1")], bizStep: "shipping", at: w.otherPlant, to: w.shop)])
            let feed = await waiting.value
            #expect(feed.items.count == 1, "\(feed.text)")
            let alert = try #require(feed.items.first)
            #expect(alert["kind"] as? String == "shipped_by_non_custodian")
            let id = try #require(alert["id"] as? String)
            // Not a party: as if it did not exist.
            #expect(await api.call(.post, "/v1/supply/alerts/\(id)/resolve", key: w.pharmacy2, body: #"{"resolution":"cleared","reason":"x"}"#).status == 404)
            let resolved = await api.call(.post, "/v1/supply/alerts/\(id)/resolve", key: w.manufacturer, body: #"{"resolution":"illegitimate","reason":"not ours to ship"}"#)
            #expect(resolved.status == 200, "\(resolved.text)")
            #expect(await api.call(.post, "/v1/supply/alerts/\(id)/resolve", key: w.regulator, body: #"{"resolution":"cleared","reason":"x"}"#).status == 409)
            // The feed from the first cursor gives each alert once; the regulator sees it too.
            let cursor = alert["cursor"] as? String ?? ""
            #expect(await api.call(.get, "/v1/supply/alerts?after=\(cursor)", key: w.manufacturer).items.isEmpty)
            #expect(await api.call(.get, "/v1/supply/alerts", key: w.regulator).items.count == 1)
            // Every event, alert and resolution is anchored and verifies; an event's proof checks offline.
            let event = try await api.pool.query("SELECT hash_id FROM epcis_events ORDER BY queue_id LIMIT 1").first?.decode("hash_id", as: String.self) ?? ""
            var proof = await api.call(.get, "/v1/epcis/events/\(DigitalLink.percentEncode(event))/proof", key: w.manufacturer)
            for _ in 0..<50 where proof.status != 200 {
                try await Task.sleep(for: .milliseconds(100))
                proof = await api.call(.get, "/v1/epcis/events/\(DigitalLink.percentEncode(event))/proof", key: w.manufacturer)
            }
            #expect(proof.status == 200, "\(proof.text)")
            try await waitUntil("everything sequenced", deadline: .seconds(20)) {
                (try? await api.pool.query("SELECT count(*) AS n FROM ledger_queue").first?.decode("n", as: Int64.self)) == 0
            }
            #expect(await api.call(.get, "/v1/epcis/events/\(DigitalLink.percentEncode(event))/proof", key: w.pharmacy2).status == 404)
            let receipt = try #require(try JSONDecoder().decode(SupplyReceipts.self, from: Data(proof.response.body)).items.first)
            let entry = try receipt.verify(publicKey: api.ledger.signer.key.publicKey)
            #expect(entry["type"] == .string("epcis.event") && entry["ref"] == .string(event))
            #expect(entry["hash"] == .string("sha256:" + String(EventHash.digestPart(event).dropFirst("sha-256;".count))))
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("epcis-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let keyFile = folder.appendingPathComponent("key.pub"), receiptFile = folder.appendingPathComponent("receipt.json")
            try api.ledger.signer.verifier.text.write(to: keyFile, atomically: true, encoding: .utf8)
            try JSONEncoder().encode(receipt).write(to: receiptFile)
            let offline = try await runProcess(RepositoryPaths.executable, ["verify", "--receipt", receiptFile.path, "--key", keyFile.path], environment: [:])
            #expect(offline.status == 0, "\(offline.stderr)")

            await api.ledger.stop()
            let report = try await LedgerVerifier(pool: api.pool).verify()
            #expect(report.anchoredObjects["epcis.event"] == 2 && report.anchoredObjects["supply.alert.raised"] == 1
                    && report.anchoredObjects["supply.alert.resolved"] == 1, "\(report.anchoredObjects)")
            // An event changed behind the ledger's back no longer hashes to its id.
            try await api.pool.withTransaction { transaction in
                try await transaction.query("SET LOCAL session_replication_role = replica")
                try await transaction.query("UPDATE epcis_events SET event = convert_to(replace(convert_from(event, 'UTF8'), 'shipping', 'receiving'), 'UTF8') WHERE biz_step = 'shipping'")
            }
            let failure = await #expect(throws: VerificationFailure.self) { _ = try await LedgerVerifier(pool: api.pool).verify() }
            #expect(failure?.table == "epcis_events")
        }
    }

    @Test func queryParametersNarrowAndPage() async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            try await w.commission(["Q1", "Q2", "Q3"])
            try await w.capture(w.manufacturer, [World.event([World.sgtin("Q1")], bizStep: "shipping", at: w.plant, to: w.warehouse),
                                                 World.event([World.sgtin("Q2")], bizStep: "urn:epcglobal:cbv:bizstep:shipping", at: w.plant, to: w.warehouse)])
            func count(_ query: String) async throws -> Int {
                let reply = await api.call(.get, "/v1/epcis/events?\(query)", key: w.manufacturer)
                guard reply.status == 200 else { throw HarnessError(reply.text) }
                return try Self.eventList(reply).count
            }
            #expect(try await count("") == 3)
            #expect(try await count("EQ_bizStep=shipping") == 2)
            #expect(try await count("EQ_bizStep=https%3A%2F%2Fref.gs1.org%2Fcbv%2FBizStep-commissioning") == 1)
            #expect(try await count("MATCH_epc=\(DigitalLink.percentEncode("https://id.gs1.org/01/\(World.gtin)/21/Q2"))") == 2)
            #expect(try await count("eventType=AggregationEvent") == 0)
            #expect(try await count("EQ_readPoint=\(DigitalLink.percentEncode(World.site(w.plant)))") == 3)
            #expect(try await count("GE_eventTime=2099-01-01T00:00:00Z") == 0)
            let first = await api.call(.get, "/v1/epcis/events?perPage=2", key: w.manufacturer)
            #expect(try Self.eventList(first).count == 2)
            let link = try #require(first.response.headers.first(name: "Link"))
            let token = try #require(first.response.headers.first(name: "GS1-Next-Page-Token"))
            #expect(link.contains("nextPageToken=\(token)"))
            #expect(try await count("perPage=2&nextPageToken=\(token)") == 1)
            #expect(await api.call(.get, "/v1/epcis/events?perPage=0", key: w.manufacturer).status == 400)
            #expect(await api.call(.get, "/v1/epcis/events?EQ_colour=red", key: w.manufacturer).status == 400)
            // A trace: every event of the pack with its hash id.
            let trace = await api.call(.get, "/v1/supply/packs/\(World.gtin)/Q1/trace", key: w.distributor)
            #expect(trace.status == 200, "\(trace.text)")
            #expect((trace.json["history"] as? [[String: Any]])?.count == 2)
            #expect(await api.call(.get, "/v1/supply/packs/\(World.gtin)/Q1/trace", key: w.pharmacy).status == 404)
        }
    }

    /// A pharmacy's fill that names the pack records its dispensing; the pack's trace reaches the
    /// prescription, and dispensing the same pack again is an alert.
    @Test func aFillThatNamesThePackRecordsItsDispensing() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            let w = try await World.make(api)
            let rx = try await PrescriptionWorld.make(api)
            let counter = World.gln("061414100009")
            #expect(await api.call(.post, "/v1/supply/locations", key: api.adminKey, body: #"{"organization":"\#(rx.pharmacyOrg1)","gln":"\#(counter)","name":"counter"}"#).status == 201)
            try await w.commission(["P1"])
            try await w.capture(w.manufacturer, [World.event([World.sgtin("P1")], bizStep: "shipping", at: w.plant, to: counter)])
            try await w.capture(rx.pharmacy1, [World.event([World.sgtin("P1")], bizStep: "receiving", at: counter)])
            func fill(_ pack: String) async throws -> APIHarness.Reply {
                let prescription = try await rx.prescribed(PrescriptionWorld.request("197361"))
                return await api.call(.post, "/v1/prescriptions/\(prescription)/dispense", key: rx.pharmacy1, body: """
                    {"medicationDispense":{"resourceType":"MedicationDispense","status":"completed","identifier":[{"system":"https://id.gs1.org","value":"\(pack)"}],"medicationCodeableConcept":{"coding":[{"system":"\(PrescriptionWorld.rxnorm)","code":"197361"}]},"quantity":{"value":30,"unit":"TAB","code":"TAB"}},"patientIdentifier":{"system":"\(PrescriptionWorld.identifierSystem)","value":"\(rx.identifier)"}}
                    """)
            }
            let first = try await fill("(01)\(World.gtin)(21)P1")
            #expect(first.status == 201, "\(first.text)")
            #expect(try await w.pack("P1")?.state == .dispensed)
            #expect(await w.alerts(w.regulator).isEmpty)
            let trace = await api.call(.get, "/v1/supply/packs/\(World.gtin)/P1/trace", key: rx.pharmacy1)
            let last = (trace.json["history"] as? [[String: Any]])?.last?["event"] as? [String: Any]
            let transaction = (last?["bizTransactionList"] as? [[String: Any]])?.first?["bizTransaction"] as? String
            #expect(transaction?.hasPrefix("urn:careledger:prescription:") == true, "\(trace.text)")
            #expect(!trace.text.contains(rx.patientId))
            // The same pack handed over on another prescription.
            #expect(try await fill(World.sgtin("P1")).status == 201)
            #expect(await w.alerts(w.regulator, kind: "dispensed_twice").count == 1)
            // A pack identifier that cannot be read refuses the fill, saying where.
            let bad = try await fill("(01)04012345111119(21)P1")
            #expect(bad.status == 422)
            #expect(bad.text.contains("medicationDispense.identifier[0].value"))
        }
    }

    /// A shipment nobody receives shows on both sides once its window has passed, once.
    @Test func aShipmentNotReceivedInTimeAlertsBothSides() async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            try await w.commission(["S1", "S2"])
            try await w.capture(w.manufacturer, [World.event([World.sgtin("S1"), World.sgtin("S2")], bizStep: "shipping", at: w.plant, to: w.warehouse)])
            try await w.capture(w.distributor, [World.event([World.sgtin("S2")], bizStep: "receiving", at: w.warehouse)])
            // Within the window: silent.
            #expect(await w.alerts(w.distributor, kind: "shipment_not_received").isEmpty)
            try await api.pool.query("UPDATE supply_shipments SET shipped_at = now() - interval '73 hours'")
            try await Task.sleep(for: SweepThrottle.interval)
            // The poll that finds the shipment overdue raises the alert; it is on the feed once sequenced.
            _ = await api.call(.get, "/v1/supply/alerts", key: w.distributor)
            #expect(await w.alerts(w.distributor, kind: "shipment_not_received").count == 1)
            let shipper = await w.alerts(w.manufacturer, kind: "shipment_not_received")
            #expect(shipper.count == 1)
            #expect((shipper.first?["epc"] as? String)?.hasSuffix("/21/S1") == true)
            try await Task.sleep(for: SweepThrottle.interval)
            #expect(await w.alerts(w.regulator, kind: "shipment_not_received").count == 1)
        }
    }

    /// An expired lot moving on is an alert (it still moves); packing what one does not hold is a
    /// broken rule; neither fires for a pack in date packed by its holder.
    @Test func expiredPacksAndPackingByANonHolder() async throws {
        try await APIHarness.with { api in
            let w = try await World.make(api)
            try await w.commission(["E1"], lot: "OLD", expiry: "2020-01-31")
            try await w.commission(["E2"], lot: "NEW", expiry: "2035-01-31")
            try await w.capture(w.manufacturer, [World.event([World.sgtin("E2")], bizStep: "shipping", at: w.plant, to: w.warehouse)])
            #expect(await w.alerts(w.manufacturer, kind: "expired_moving").isEmpty)
            try await w.capture(w.manufacturer, [World.event([World.sgtin("E1")], bizStep: "shipping", at: w.plant, to: w.warehouse)])
            #expect(await w.alerts(w.manufacturer, kind: "expired_moving").count == 1)
            #expect(try await w.pack("E1")?.state == .inTransit)
            #expect(await w.verify(World.sgtin("E2"))["status"] == "verified")
            try await w.capture(w.distributor, [World.event([World.sgtin("E1")], bizStep: "receiving", at: w.warehouse)])
            #expect(await w.verify(World.sgtin("E1"))["status"] == "suspect")   // an open alert on it
            let unit = World.sscc("2000000019")
            try await w.capture(w.otherMaker, [World.event([World.sgtin("E2")], bizStep: "packing", at: w.otherPlant, action: "ADD",
                                                           type: "AggregationEvent", extra: #","parentID":"\#(unit)""#)])
            #expect(await w.alerts(w.manufacturer, kind: "not_custodian").count == 1)
            #expect(try await w.pack("E2")?.parent == nil)
            try await w.capture(w.distributor, [World.event([World.sgtin("E1")], bizStep: "packing", at: w.warehouse, action: "ADD",
                                                            type: "AggregationEvent", extra: #","parentID":"\#(unit)""#)])
            #expect(try await w.pack("E1")?.parent == EPCISReader.canonical(unit))
            #expect(await w.alerts(w.manufacturer, kind: "not_custodian").count == 1)
        }
    }
}
