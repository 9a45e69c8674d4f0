import FoundationEssentials

/// A prescription the checks look at: the one proposed, or one already recorded for the patient.
struct MedicationOrder: Sendable {
    /// Nil for a proposal that has no id yet (a dry run).
    let id: String?
    let org: String
    let prescriber: String
    let createdAt: Date
    let request: FHIRMedicationRequest
    let cancelled: Bool
    /// Who filled it, and when.
    let fills: [(pharmacy: String, at: Date)]

    /// Whether the patient is taking it now, as far as the record shows.
    func isCurrent(at now: Date) -> Bool {
        guard request.active, !cancelled else { return false }
        if let from = request.validFrom, from > now { return false }
        if let until = request.validUntil { return until >= now }
        return now.timeIntervalSince(createdAt) <= 365 * 86_400
    }
}

/// An allergy recorded for the patient, by the organization that recorded it.
struct RecordedAllergy: Sendable {
    let id: String
    let org: String
    let allergy: FHIRAllergyIntolerance
}

/// One problem the checks found, before it becomes a DetectedIssue.
struct Finding: Sendable {
    enum Code: String, Sendable, CaseIterable {
        case allergy = "ALGY"
        case interaction = "DRG"
        case duplicateTherapy = "DUPTHPY"
        case abuse = "ABUSE"
        case highDose = "DOSEH"
        /// No check could be made: the medication is unknown to the knowledge set.
        case unchecked = "NOCHECK"

        var display: String {
            switch self {
            case .allergy: "Allergy Alert"
            case .interaction: "Drug Interaction Alert"
            case .duplicateTherapy: "Duplicate Therapy Alert"
            case .abuse: "Commonly Abused/Misused Alert"
            case .highDose: "High Dose Alert"
            case .unchecked: "No check could be made"
            }
        }
    }

    /// A record the finding rests on, other than the proposed prescription.
    struct Record: Sendable {
        enum Kind: String, Sendable {
            case prescription = "MedicationRequest"
            case allergy = "AllergyIntolerance"
        }

        let kind: Kind
        let id: String
        let org: String
        let display: String
    }

    let code: Code
    let severity: Severity
    let detail: String
    let records: [Record]
    /// What the finding is about, without which records: the same pair raised again at a renewal
    /// has the same key, so an acknowledgement carries over. Nil for findings that are never
    /// carried over (dose and abuse, which depend on everything active).
    let acknowledgementKey: String?
    /// Stable identity of this finding on this patient's record, for acknowledging it by id.
    let identity: String
    /// The knowledge source it rests on.
    let source: String?
}

/// The prescribing checks, as one pure function of the proposal, the patient's other records and
/// the knowledge: allergies, interactions, duplicate therapy, controlled-substance patterns and the
/// daily opioid dose in morphine milligram equivalents.
public struct SafetyChecks: Sendable {
    public struct Settings: Sendable {
        public var abusePrescribers = 4
        public var abusePharmacies = 4
        public var abuseWindowDays = 90
        public var mmeWarning: Decimal = 50
        public var mmeHigh: Decimal = 90

        public init() {}
    }

    let knowledge: MedicationKnowledge
    let settings: Settings

    /// What a medication is, as the knowledge set knows it.
    struct Resolved: Sendable {
        let product: MedicationKnowledge.Product?
        let ingredients: [MedicationKnowledge.Strength]
        var known: Bool { !ingredients.isEmpty }
    }

    func resolve(_ codings: [Coding]) -> Resolved {
        for coding in codings {
            if let product = knowledge.products[coding] { return Resolved(product: product, ingredients: product.ingredients) }
        }
        var ingredients: [MedicationKnowledge.Strength] = []
        for coding in codings {
            if let ingredient = knowledge.ingredientCodes[coding], !ingredients.contains(where: { $0.ingredient == ingredient }) {
                ingredients.append(MedicationKnowledge.Strength(ingredient: ingredient, amount: nil, unit: nil))
            }
        }
        return Resolved(product: nil, ingredients: ingredients)
    }

    /// How a finding names an order: the knowledge set's name for its product, else the request's own words.
    func name(of order: MedicationOrder) -> String {
        order.request.codings.lazy.compactMap { knowledge.products[$0]?.name }.first ?? order.request.medicationText
    }

    private func record(_ order: MedicationOrder) -> Finding.Record {
        Finding.Record(kind: .prescription, id: order.id ?? "", org: order.org, display: name(of: order))
    }

    func run(_ proposal: MedicationOrder, others: [MedicationOrder], allergies: [RecordedAllergy], at now: Date) -> [Finding] {
        let proposed = resolve(proposal.request.codings)
        guard proposed.known else {
            let codes = proposal.request.codings.map { "\($0.system)|\($0.code)" }.joined(separator: ", ")
            return [Finding(code: .unchecked, severity: .low,
                            detail: "No safety check could be made for \(proposal.request.medicationText): the medication knowledge (\(knowledge.version)) does not know \(codes.isEmpty ? "a medication named only by text" : codes). Check allergies and interactions by other means.",
                            records: [], acknowledgementKey: nil, identity: "NOCHECK|" + codes, source: nil)]
        }
        // Each record resolved once for all the checks.
        let resolved = others.map { ($0, resolve($0.request.codings)) }
        let current = resolved.filter { $0.0.id != proposal.id && $0.0.id != proposal.request.renews && $0.0.isCurrent(at: now) }
        var findings = allergyFindings(proposed, allergies)
        findings += interactionFindings(proposed, current)
        findings += duplicateFindings(proposed, current)
        findings += abuseFindings(proposal, proposed, resolved, at: now)
        findings += doseFindings(proposal, proposed, current)
        return findings
    }

    // MARK: Allergies

    private func allergyFindings(_ proposed: Resolved, _ allergies: [RecordedAllergy]) -> [Finding] {
        var findings: [Finding] = []
        for recorded in allergies where recorded.allergy.applies && !recorded.allergy.noKnownDrugAllergy {
            let allergen = resolve(recorded.allergy.codings)
            let record = Finding.Record(kind: .allergy, id: recorded.id, org: recorded.org, display: recorded.allergy.text)
            guard allergen.known else {
                if recorded.allergy.aboutMedication {
                    findings.append(Finding(code: .allergy, severity: .low,
                                            detail: "An allergy to \(recorded.allergy.text) is recorded in a form the medication knowledge does not know; it could not be checked against this prescription.",
                                            records: [record], acknowledgementKey: "ALGY|unknown|" + recorded.id, identity: "ALGY|unknown|" + recorded.id, source: nil))
                }
                continue
            }
            let allergenIngredients = Set(allergen.ingredients.map { $0.ingredient })
            let allergenGroups = Set(allergenIngredients.flatMap { knowledge.classesOf[$0] ?? [] }.filter { knowledge.classes[$0]?.allergyGroup == true })
            for ingredient in proposed.ingredients.map(\.ingredient) {
                if allergenIngredients.contains(ingredient) {
                    findings.append(Finding(code: .allergy, severity: .high,
                                            detail: "Allergy to \(recorded.allergy.text) recorded; this prescription contains \(knowledge.name(of: ingredient)).",
                                            records: [record], acknowledgementKey: "ALGY|\(ingredient)|\(ingredient)",
                                            identity: "ALGY|\(recorded.id)|\(ingredient)", source: "rxnorm"))
                } else if let group = (knowledge.classesOf[ingredient] ?? []).first(where: allergenGroups.contains) {
                    let severity: Severity = recorded.allergy.criticality == "low" ? .moderate : .high
                    findings.append(Finding(code: .allergy, severity: severity,
                                            detail: "Allergy to \(recorded.allergy.text) recorded; \(knowledge.name(of: ingredient)) belongs to the same class (\(knowledge.name(of: group))), so cross-reactivity is expected.",
                                            records: [record], acknowledgementKey: "ALGY|\(group)|\(ingredient)",
                                            identity: "ALGY|\(recorded.id)|\(group)|\(ingredient)", source: "fda-epc"))
                }
            }
        }
        return findings
    }

    // MARK: Interactions

    private func interactionFindings(_ proposed: Resolved, _ current: [(MedicationOrder, Resolved)]) -> [Finding] {
        // The proposal's side once: each ingredient's concepts and the interaction rows naming them.
        let sides = proposed.ingredients.map { $0.ingredient }.map { ingredient in
            let concepts = knowledge.concepts(of: ingredient)
            return (ingredient, concepts, Set(concepts.flatMap { knowledge.interactionsByConcept[$0] ?? [] }).sorted().map { knowledge.interactions[$0] })
        }
        var findings: [Finding] = []
        for (order, other) in current {
            var seen: Set<String> = []
            for (a, conceptsA, candidates) in sides {
                for b in other.ingredients.map(\.ingredient) where a != b {
                    let conceptsB = knowledge.concepts(of: b)
                    // Of the rows that match this pair, the most specific speaks: the most severe
                    // (warfarin with an NSAID, not also anticoagulants with NSAIDs).
                    let matching = candidates.filter {
                        (conceptsA.contains($0.left) && conceptsB.contains($0.right)) || (conceptsA.contains($0.right) && conceptsB.contains($0.left))
                    }
                    guard let interaction = matching.max(by: { $0.severity < $1.severity }), seen.insert(interaction.id).inserted else { continue }
                    let pair = [a, b].sorted().joined(separator: "+")
                    findings.append(Finding(
                        code: .interaction, severity: interaction.severity,
                        detail: "\(knowledge.name(of: a).capitalizedFirst) with \(knowledge.name(of: b)) (\(name(of: order))): \(interaction.effect) Management: \(interaction.management)",
                        records: [record(order)], acknowledgementKey: "DRG|\(interaction.id)|\(pair)", identity: "DRG|\(interaction.id)|\(pair)|\(order.id ?? "")",
                        source: interaction.source))
                }
            }
        }
        return findings
    }

    // MARK: Duplicate therapy

    private func duplicateFindings(_ proposed: Resolved, _ current: [(MedicationOrder, Resolved)]) -> [Finding] {
        var findings: [Finding] = []
        let proposedIngredients = Set(proposed.ingredients.map { $0.ingredient })
        let classesA = Set(proposedIngredients.flatMap { knowledge.classesOf[$0] ?? [] }).filter { knowledge.classes[$0]?.duplicateTherapy == true }
        for (order, resolved) in current {
            let other = Set(resolved.ingredients.map { $0.ingredient })
            let record = record(order)
            if let same = proposedIngredients.intersection(other).sorted().first {
                findings.append(Finding(code: .duplicateTherapy, severity: .moderate,
                                        detail: "\(knowledge.name(of: same).capitalizedFirst) is already prescribed (\(name(of: order))).",
                                        records: [record], acknowledgementKey: "DUPTHPY|\(same)", identity: "DUPTHPY|\(same)|\(order.id ?? "")", source: "rxnorm"))
                continue
            }
            guard !classesA.isEmpty else { continue }
            if let shared = classesA.intersection(other.flatMap { knowledge.classesOf[$0] ?? [] }).sorted().first {
                let pair = (Array(proposedIngredients) + Array(other)).sorted().joined(separator: "+")
                findings.append(Finding(code: .duplicateTherapy, severity: .moderate,
                                        detail: "Another \(knowledge.name(of: shared)) is already prescribed (\(name(of: order))).",
                                        records: [record], acknowledgementKey: "DUPTHPY|\(shared)|\(pair)", identity: "DUPTHPY|\(shared)|\(order.id ?? "")",
                                        source: "fda-epc"))
            }
        }
        return findings
    }

    // MARK: Controlled substances

    private func isControlled(_ resolved: Resolved) -> Bool {
        resolved.ingredients.contains { knowledge.controlled[$0.ingredient] != nil }
    }

    private func abuseFindings(_ proposal: MedicationOrder, _ proposed: Resolved, _ others: [(MedicationOrder, Resolved)], at now: Date) -> [Finding] {
        guard isControlled(proposed) else { return [] }
        let since = now.addingTimeInterval(-Double(settings.abuseWindowDays) * 86_400)
        let recent = others.filter { $0.0.id != proposal.id && $0.0.createdAt >= since && isControlled($0.1) }.map { $0.0 }
        let prescribers = Set(recent.map { $0.prescriber } + [proposal.prescriber])
        let pharmacies = Set(recent.flatMap { $0.fills.filter { $0.at >= since }.map { $0.pharmacy } })
        guard prescribers.count >= settings.abusePrescribers || pharmacies.count >= settings.abusePharmacies else { return [] }
        return [Finding(
            code: .abuse, severity: .high,
            detail: "Controlled-substance prescriptions for this patient in the last \(settings.abuseWindowDays) days come from \(prescribers.count) prescribers and were filled at \(pharmacies.count) pharmacies (thresholds: \(settings.abusePrescribers) prescribers or \(settings.abusePharmacies) pharmacies).",
            records: recent.map { record($0) },
            acknowledgementKey: nil, identity: "ABUSE|" + recent.compactMap { $0.id }.sorted().joined(separator: ","), source: "dea-21cfr1308")]
    }

    // MARK: Opioid dose

    /// An order's daily morphine milligram equivalents: nil when it holds no opioid with a
    /// conversion factor, `.failure` with the reason when it cannot be computed.
    func dailyMME(_ request: FHIRMedicationRequest, _ resolved: Resolved) -> Result<Decimal, MMEProblem>? {
        let opioids = resolved.ingredients.filter { knowledge.mmeFactors[$0.ingredient] != nil }
        guard !opioids.isEmpty else { return nil }
        var total: Decimal = 0
        for opioid in opioids {
            guard let route = resolved.product?.route else { return .failure(.noStrength) }
            guard let factor = knowledge.mmeFactors[opioid.ingredient]?[route] else { return .failure(.noFactor(route)) }
            guard let strength = opioid.amount, opioid.unit == factor.unit else { return .failure(.noStrength) }
            if factor.unit == "mcg/h" {
                // A transdermal system delivers its rate for as long as it is worn, whatever the change interval.
                let systems = request.dosages.compactMap { $0.dose }.first.flatMap { $0.countsDoseUnits ? $0.value : nil } ?? 1
                total += strength * systems * factor.factor
                continue
            }
            guard let milligrams = dailyMilligrams(request, strength: strength, singleIngredient: resolved.ingredients.count == 1) else {
                return .failure(.noDose)
            }
            total += milligrams * factor.factor
        }
        return .success(total)
    }

    enum MMEProblem: Error, Sendable {
        case noStrength, noDose
        case noFactor(String)

        var description: String {
            switch self {
            case .noStrength: "the product's strength is not known"
            case .noDose: "neither the dose and frequency nor the quantity and supply duration give a daily amount"
            case .noFactor(let route): "there is no CDC conversion factor for this opioid by the \(route) route"
            }
        }
    }

    /// Milligrams a day from the dosage (concurrent instructions, sharing a sequence, add up; the
    /// largest sequence counts), else from the quantity over the expected supply duration.
    private func dailyMilligrams(_ request: FHIRMedicationRequest, strength: Decimal, singleIngredient: Bool) -> Decimal? {
        var bySequence: [Int: Decimal] = [:]
        var complete = !request.dosages.isEmpty
        for (index, dosage) in request.dosages.enumerated() {
            guard let dose = dosage.dose, let perDay = dosage.perDay else { complete = false; break }
            let perAdministration: Decimal
            if dose.countsDoseUnits {
                perAdministration = dose.value * strength
            } else if dose.unit == "mg", singleIngredient {
                perAdministration = dose.value
            } else {
                complete = false
                break
            }
            bySequence[dosage.sequence ?? -1 - index, default: 0] += perAdministration * perDay
        }
        if complete, let largest = bySequence.values.max() { return largest }
        guard let quantity = request.fillQuantity, quantity.countsDoseUnits, let days = request.supplyDays, days > 0 else { return nil }
        return quantity.value * strength / days
    }

    private func doseFindings(_ proposal: MedicationOrder, _ proposed: Resolved, _ current: [(MedicationOrder, Resolved)]) -> [Finding] {
        let ownMME: Decimal
        switch dailyMME(proposal.request, proposed) {
        case nil:
            return []
        case .success(let value)?:
            ownMME = value
        case .failure(let problem)?:
            return [Finding(code: .highDose, severity: .low,
                            detail: "The daily morphine milligram equivalent of \(name(of: proposal)) could not be computed: \(problem.description). Total opioid exposure was not checked.",
                            records: [], acknowledgementKey: nil, identity: "DOSEH|unknown", source: "cdc-2022")]
        }
        var total = ownMME
        var contributing: [Finding.Record] = []
        var unknown = 0
        for (order, resolved) in current {
            guard let result = dailyMME(order.request, resolved) else { continue }
            switch result {
            case .success(let value):
                total += value
                contributing.append(record(order))
            case .failure:
                unknown += 1
            }
        }
        let severity: Severity
        if total > settings.mmeHigh {
            severity = .high
        } else if total > settings.mmeWarning {
            severity = .moderate
        } else {
            return []
        }
        let also = unknown == 0 ? "" : " \(unknown) other active opioid prescription(s) could not be converted and are not counted."
        return [Finding(code: .highDose, severity: severity,
                        detail: "Total daily opioid dose would be \(Self.format(total)) MME (CDC 2022 factors): over \(Self.format(severity == .high ? settings.mmeHigh : settings.mmeWarning)) MME/day.\(also)",
                        records: contributing, acknowledgementKey: nil, identity: "DOSEH|" + contributing.map { $0.id }.sorted().joined(separator: ","),
                        source: "cdc-2022")]
    }

    /// A positive amount to one decimal place, rounded half up.
    static func format(_ value: Decimal) -> String {
        let text = "\(value)"
        guard let point = text.firstIndex(of: "."), let whole = Int(text[..<point]), whole < 1_000_000_000_000 else { return text }
        let fraction = Array(text[text.index(after: point)...]).compactMap { $0.wholeNumberValue }
        var tenths = whole * 10 + (fraction.first ?? 0)
        if fraction.count > 1, fraction[1] >= 5 { tenths += 1 }
        return tenths % 10 == 0 ? "\(tenths / 10)" : "\(tenths / 10).\(tenths % 10)"
    }
}

extension String {
    var capitalizedFirst: String {
        guard let first else { return self }
        return first.uppercased() + dropFirst()
    }
}
