import CareLedger
import Foundation
import Testing

@Suite struct ConsentPolicyTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let patient = "pat_06h161e40yjs3kwrwyv5pywpzg"

    static func request(org: String = "org_ins", kind: OrganizationKind = .insurer, patient: String = patient,
                        purpose: PurposeOfUse = .payment, category: DataCategory = .claim, at time: Date = now) -> ConsentRequest {
        ConsentRequest(actorOrg: org, actorKind: kind, patientId: patient, purpose: purpose, category: category, time: time)
    }

    static func rule(_ id: String, _ grantee: ConsentRule.Grantee = .kind(.insurer), purposes: Set<PurposeOfUse> = [.payment],
                     categories: Set<DataCategory> = [.claim], all: Bool = false, start: Date? = nil, end: Date? = nil,
                     provision: ConsentRule.Provision = .permit, revoked: Bool = false, patient: String = patient) -> ConsentRule {
        ConsentRule(id: id, patientId: patient, grantee: grantee, purposes: purposes, categories: categories, coversAllCategories: all,
                    start: start, end: end, provision: provision, revoked: revoked)
    }

    struct Case: Sendable, CustomStringConvertible {
        let description: String
        let request: ConsentRequest
        let consents: [ConsentRule]
        let permitted: Bool
        let decidedBy: String?
    }

    static let cases: [Case] = [
        Case(description: "no consent at all: deny by default", request: request(), consents: [], permitted: false, decidedBy: nil),
        Case(description: "kind grant covers an insurer", request: request(), consents: [rule("c1")], permitted: true, decidedBy: "c1"),
        Case(description: "org grant covers that org", request: request(), consents: [rule("c1", .organization("org_ins"))], permitted: true, decidedBy: "c1"),
        Case(description: "org grant does not cover another org", request: request(org: "org_other"), consents: [rule("c1", .organization("org_ins"))], permitted: false, decidedBy: nil),
        Case(description: "kind grant does not cover another kind", request: request(kind: .hospital), consents: [rule("c1")], permitted: false, decidedBy: nil),
        Case(description: "another purpose is not covered", request: request(purpose: .research), consents: [rule("c1")], permitted: false, decidedBy: nil),
        Case(description: "another category is not covered", request: request(category: .lab), consents: [rule("c1")], permitted: false, decidedBy: nil),
        Case(description: "wildcard covers ordinary categories", request: request(category: .lab), consents: [rule("c1", categories: [], all: true)], permitted: true, decidedBy: "c1"),
        Case(description: "wildcard never covers mental health", request: request(category: .mentalHealth), consents: [rule("c1", categories: [], all: true)], permitted: false, decidedBy: nil),
        Case(description: "wildcard never covers substance use", request: request(category: .substanceUse), consents: [rule("c1", categories: [], all: true)], permitted: false, decidedBy: nil),
        Case(description: "wildcard never covers sexual health", request: request(category: .sexualHealth), consents: [rule("c1", categories: [], all: true)], permitted: false, decidedBy: nil),
        Case(description: "a named sensitive category is covered", request: request(category: .mentalHealth), consents: [rule("c1", categories: [.mentalHealth])], permitted: true, decidedBy: "c1"),
        Case(description: "before the period starts", request: request(), consents: [rule("c1", start: now.addingTimeInterval(1))], permitted: false, decidedBy: nil),
        Case(description: "at the period's start", request: request(), consents: [rule("c1", start: now)], permitted: true, decidedBy: "c1"),
        Case(description: "at the period's end (exclusive)", request: request(), consents: [rule("c1", end: now)], permitted: false, decidedBy: nil),
        Case(description: "inside the period", request: request(), consents: [rule("c1", start: now.addingTimeInterval(-60), end: now.addingTimeInterval(60))], permitted: true, decidedBy: "c1"),
        Case(description: "a revoked consent counts for nothing", request: request(), consents: [rule("c1", revoked: true)], permitted: false, decidedBy: nil),
        Case(description: "another patient's consent counts for nothing", request: request(), consents: [rule("c1", patient: "pat_other")], permitted: false, decidedBy: nil),
        Case(description: "deny wins over permit", request: request(), consents: [rule("c1"), rule("c2", .organization("org_ins"), provision: .deny)], permitted: false, decidedBy: "c2"),
        Case(description: "deny wins whatever the order", request: request(), consents: [rule("c2", provision: .deny), rule("c1")], permitted: false, decidedBy: "c2"),
        Case(description: "a deny that does not apply leaves the permit", request: request(), consents: [rule("c1"), rule("c2", purposes: [.research], provision: .deny)], permitted: true, decidedBy: "c1"),
        Case(description: "a revoked deny no longer denies", request: request(), consents: [rule("c1"), rule("c2", provision: .deny, revoked: true)], permitted: true, decidedBy: "c1"),
        Case(description: "a deny alone still denies", request: request(), consents: [rule("c2", provision: .deny)], permitted: false, decidedBy: "c2"),
    ]

    @Test(arguments: cases)
    func decides(_ testCase: Case) {
        let decision = ConsentPolicy.decide(testCase.request, consents: testCase.consents)
        #expect(decision.permitted == testCase.permitted)
        #expect(decision.consentId == testCase.decidedBy)
    }

    /// Every combination of grantee, purpose, category and provision against one request: the
    /// decision is always the documented rule, checked independently here.
    @Test func exhaustiveGrid() {
        let request = Self.request(category: .lab)
        var checked = 0
        for grantee: ConsentRule.Grantee in [.kind(.insurer), .kind(.hospital), .organization("org_ins"), .organization("org_x")] {
            for purpose in PurposeOfUse.allCases {
                for category in DataCategory.allCases {
                    for all in [false, true] {
                        for provision in [ConsentRule.Provision.permit, .deny] {
                            let consent = Self.rule("c", grantee, purposes: [purpose], categories: [category], all: all, provision: provision)
                            let granteeMatches = grantee == .kind(.insurer) || grantee == .organization("org_ins")
                            let applies = granteeMatches && purpose == .payment && (category == .lab || all)
                            let decision = ConsentPolicy.decide(request, consents: [consent])
                            #expect(decision.permitted == (applies && provision == .permit))
                            #expect(decision.consentId == (applies ? "c" : nil))
                            checked += 1
                        }
                    }
                }
            }
        }
        #expect(checked == 4 * PurposeOfUse.allCases.count * DataCategory.allCases.count * 4)
    }
}
