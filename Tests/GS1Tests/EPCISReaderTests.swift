import Foundation
import GS1
import Ledger
import Testing
import TestSupport

@Suite struct EPCISReaderTests {
    @Test func everyFixtureDocumentReads() throws {
        let files = try SharedFiles.files(under: "fixtures/epcis", extension: "jsonld").filter { !$0.path.contains("event-hash") }
        #expect(files.count == 15)
        var types = Set<String>()
        for file in files {
            let events = try EPCISReader.read(try JSONParser.parse(Array(try Data(contentsOf: file))))
            #expect(!events.isEmpty, "\(file.lastPathComponent)")
            for event in events {
                types.insert(event.type)
                #expect(event.hashID.hasPrefix("ni:///sha-256;") && event.hashID.hasSuffix("?ver=CBV2.0"))
            }
        }
        #expect(types == EPCISEvent.types)
    }

    @Test func custodyFieldsAreReadInCanonicalForm() throws {
        let events = try EPCISReader.read(try JSONParser.parse(Array(try SharedFiles.data("fixtures/epcis/event-hash/ReferenceEventHashAlgorithm3.jsonld"))))
        let event = try #require(events.first)
        #expect(event.bizStep == "departing")
        #expect(event.disposition == "in_transit")
        #expect(event.epcs == ["https://id.gs1.org/01/00614141111114/21/987"])
        #expect(event.readPoint.flatMap(EPCISReader.gln) == "4012345000115")
        #expect(event.destinations == [EPCISParty(type: "owning_party", id: "https://id.gs1.org/417/0614141000005")])
    }

    @Test(arguments: [
        (#"[]"#, "$"),
        (#"{"type":"Thing"}"#, "type"),
        (#"{"type":"EPCISDocument","schemaVersion":"1.2","creationDate":"2024-01-01T00:00:00Z","epcisBody":{"eventList":[]}}"#, "schemaVersion"),
        (#"{"type":"EPCISDocument","schemaVersion":"2.0","creationDate":"2024-01-01T00:00:00Z","epcisBody":{"eventList":[]}}"#, "epcisBody.eventList"),
        (#"{"type":"EPCISDocument","schemaVersion":"2.0","creationDate":"2024-01-01T00:00:00Z","epcisBody":{"eventList":[{"type":"ObjectEvent","eventTime":"2024-01-01T00:00:00Z","eventTimeZoneOffset":"+00:00","action":"ADD"},{"type":"ObjectEvent","eventTime":"yesterday"}]}}"#, "epcisBody.eventList[1].eventTime"),
        (#"{"type":"ObjectEvent","eventTime":"2024-01-01T00:00:00Z","eventTimeZoneOffset":"+00:00","action":"MOVE"}"#, "action"),
        (#"{"type":"ObjectEvent","eventTime":"2024-01-01T00:00:00Z","eventTimeZoneOffset":"+00:00","action":"ADD","epcList":["x",3]}"#, "epcList[0]"),
        (#"{"type":"AggregationEvent","eventTime":"2024-01-01T00:00:00Z","eventTimeZoneOffset":"+00:00","action":"ADD","childEPCs":[]}"#, "parentID"),
        (#"{"type":"TransactionEvent","eventTime":"2024-01-01T00:00:00Z","eventTimeZoneOffset":"+00:00","action":"ADD"}"#, "bizTransactionList"),
        (#"{"type":"ObjectEvent","eventTime":"2024-01-01T00:00:00Z","eventTimeZoneOffset":"1:00","action":"ADD"}"#, "eventTimeZoneOffset"),
        (#"{"type":"ObjectEvent","eventTime":"2024-01-01T00:00:00Z","eventTimeZoneOffset":"+01:00","action":"ADD","readPoint":{}}"#, "readPoint.id"),
        (#"{"type":"ObjectEvent","eventTime":"2024-01-01T00:00:00Z","eventTimeZoneOffset":"+01:00","action":"ADD","errorDeclaration":{"reason":"x"}}"#, "errorDeclaration.declarationTime"),
    ])
    func notEPCISNamesTheFirstProblem(body: String, path: String) throws {
        let problem = #expect(throws: EPCISProblem.self) { try EPCISReader.read(try JSONParser.parse(Array(body.utf8))) }
        #expect(problem?.path == path, "\(body)")
    }
}
