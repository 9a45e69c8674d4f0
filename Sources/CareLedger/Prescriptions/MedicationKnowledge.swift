import Crypto
import FoundationEssentials
import Ledger
import Postgres
import Synchronization

/// A code as FHIR writes it: a system and a code.
struct Coding: Hashable, Sendable {
    let system: String
    let code: String
}

/// The curated medication knowledge of migration 0011, in memory: what a code names, which classes
/// an ingredient belongs to, which pairs interact, which ingredients are controlled, and how to turn
/// an opioid dose into morphine milligram equivalents. `version` is the SHA-256 of its canonical
/// form; every check records it.
struct MedicationKnowledge: Sendable {
    struct Product: Sendable {
        let coding: Coding
        let name: String
        let doseForm: String
        let route: String
        let ingredients: [Strength]
    }

    /// An ingredient of a product, with its strength per unit of the dose form when known.
    struct Strength: Sendable {
        let ingredient: String
        let amount: Decimal?
        let unit: String?
    }

    struct DrugClass: Sendable {
        let id: String
        let name: String
        let allergyGroup: Bool
        let duplicateTherapy: Bool
    }

    struct Interaction: Sendable {
        let id: String
        let left: String
        let right: String
        let severity: Severity
        let effect: String
        let management: String
        let source: String
    }

    struct MMEFactor: Sendable {
        let unit: String
        let factor: Decimal
    }

    let version: String
    let products: [Coding: Product]
    let ingredientCodes: [Coding: String]
    let ingredientNames: [String: String]
    let classes: [String: DrugClass]
    let classesOf: [String: [String]]
    let interactions: [Interaction]
    let interactionsByConcept: [String: [Int]]
    let controlled: [String: String]
    let mmeFactors: [String: [String: MMEFactor]]
    let citations: [String: String]

    /// Each ingredient with its classes, made once at load.
    let conceptSets: [String: Set<String>]

    /// An ingredient and its classes: what an interaction or an allergy can name.
    func concepts(of ingredient: String) -> Set<String> {
        conceptSets[ingredient] ?? [ingredient]
    }

    func name(of concept: String) -> String {
        ingredientNames[concept] ?? classes[concept]?.name ?? concept
    }
}

/// Severity of a finding, as FHIR DetectedIssue writes it.
enum Severity: String, Sendable, Comparable, CaseIterable {
    case high, moderate, low

    private var rank: Int {
        switch self {
        case .high: 2
        case .moderate: 1
        case .low: 0
        }
    }

    static func < (lhs: Severity, rhs: Severity) -> Bool { lhs.rank < rhs.rank }
}

/// The knowledge tables' SQL, and the loaded set, read once per process (the tables change only
/// with a migration, and a migration restarts the server).
final class MedicationKnowledgeStore: Sendable {
    private let loaded = Mutex<MedicationKnowledge?>(nil)

    func knowledge(on runner: some QueryRunner) async throws -> MedicationKnowledge {
        if let knowledge = loaded.withLock({ $0 }) { return knowledge }
        let knowledge = try await load(on: runner)
        loaded.withLock { $0 = knowledge }
        return knowledge
    }

    /// Reads every table in key order, checks that every concept an interaction names exists, and
    /// hashes the canonical form: the same rows give the same version on every server.
    func load(on runner: some QueryRunner) async throws -> MedicationKnowledge {
        let sources = try await runner.query("SELECT id, citation FROM med_sources ORDER BY id").all
        let ingredients = try await runner.query("SELECT id, name, source FROM med_ingredients ORDER BY id").all
        let codes = try await runner.query("SELECT system, code, ingredient, source FROM med_ingredient_codes ORDER BY system, code").all
        let classRows = try await runner.query("""
            SELECT id, name, system, allergy_group, duplicate_therapy, source FROM med_classes ORDER BY id
            """).all
        let memberships = try await runner.query("SELECT ingredient, class, source FROM med_ingredient_classes ORDER BY ingredient, class").all
        let productRows = try await runner.query("SELECT system, code, name, dose_form, route, source FROM med_products ORDER BY system, code").all
        let strengthRows = try await runner.query("""
            SELECT system, code, ingredient, strength::text AS strength, unit FROM med_product_ingredients ORDER BY system, code, ingredient
            """).all
        let interactionRows = try await runner.query("""
            SELECT id, left_concept, right_concept, severity, effect, management, source FROM med_interactions ORDER BY id
            """).all
        let controlledRows = try await runner.query("SELECT ingredient, schedule, source FROM med_controlled ORDER BY ingredient").all
        let mmeRows = try await runner.query("""
            SELECT ingredient, route, unit, factor::text AS factor, source FROM med_mme_factors ORDER BY ingredient, route
            """).all

        var canonical: [(key: String, value: JSONValue)] = []
        func table(_ name: String, _ rows: [PostgresRow], _ columns: [String]) throws {
            canonical.append((name, .array(try rows.map { row in
                .object(try columns.map { column in (column, try row.decode(column, as: String?.self).map(JSONValue.string) ?? .null) })
            })))
        }
        try table("sources", sources, ["id", "citation"])
        try table("ingredients", ingredients, ["id", "name", "source"])
        try table("ingredientCodes", codes, ["system", "code", "ingredient", "source"])
        canonical.append(("classes", .array(try classRows.map { row in
            .object([("id", .string(try row.decode("id"))), ("name", .string(try row.decode("name"))), ("system", .string(try row.decode("system"))),
                     ("allergyGroup", .bool(try row.decode("allergy_group"))), ("duplicateTherapy", .bool(try row.decode("duplicate_therapy"))),
                     ("source", .string(try row.decode("source")))])
        })))
        try table("classMemberships", memberships, ["ingredient", "class", "source"])
        try table("products", productRows, ["system", "code", "name", "dose_form", "route", "source"])
        try table("productIngredients", strengthRows, ["system", "code", "ingredient", "strength", "unit"])
        try table("interactions", interactionRows, ["id", "left_concept", "right_concept", "severity", "effect", "management", "source"])
        try table("controlled", controlledRows, ["ingredient", "schedule", "source"])
        try table("mmeFactors", mmeRows, ["ingredient", "route", "unit", "factor", "source"])
        let version = "sha256:" + SHA256.hexDigest(JCS.canonicalize(.object(canonical)))

        var ingredientNames: [String: String] = [:]
        for row in ingredients { ingredientNames[try row.decode("id")] = try row.decode("name") }
        var ingredientCodes: [Coding: String] = [:]
        for row in codes { ingredientCodes[Coding(system: try row.decode("system"), code: try row.decode("code"))] = try row.decode("ingredient") }
        var classes: [String: MedicationKnowledge.DrugClass] = [:]
        for row in classRows {
            let id: String = try row.decode("id")
            classes[id] = MedicationKnowledge.DrugClass(id: id, name: try row.decode("name"), allergyGroup: try row.decode("allergy_group"),
                                                        duplicateTherapy: try row.decode("duplicate_therapy"))
        }
        var classesOf: [String: [String]] = [:]
        for row in memberships { classesOf[try row.decode("ingredient"), default: []].append(try row.decode("class")) }
        var strengths: [Coding: [MedicationKnowledge.Strength]] = [:]
        for row in strengthRows {
            let amount = try row.decode("strength", as: String?.self)
            strengths[Coding(system: try row.decode("system"), code: try row.decode("code")), default: []].append(MedicationKnowledge.Strength(
                ingredient: try row.decode("ingredient"), amount: try amount.map(Self.decimal), unit: try row.decode("unit", as: String?.self)))
        }
        var products: [Coding: MedicationKnowledge.Product] = [:]
        for row in productRows {
            let coding = Coding(system: try row.decode("system"), code: try row.decode("code"))
            products[coding] = MedicationKnowledge.Product(coding: coding, name: try row.decode("name"), doseForm: try row.decode("dose_form"),
                                                           route: try row.decode("route"), ingredients: strengths[coding] ?? [])
        }
        var interactions: [MedicationKnowledge.Interaction] = []
        var byConcept: [String: [Int]] = [:]
        for row in interactionRows {
            guard let severity = Severity(rawValue: try row.decode("severity")) else { throw PostgresError(.decoding, message: "unknown interaction severity") }
            let interaction = MedicationKnowledge.Interaction(
                id: try row.decode("id"), left: try row.decode("left_concept"), right: try row.decode("right_concept"), severity: severity,
                effect: try row.decode("effect"), management: try row.decode("management"), source: try row.decode("source"))
            for concept in [interaction.left, interaction.right] {
                guard ingredientNames[concept] != nil || classes[concept] != nil else {
                    throw PostgresError(.decoding, message: "interaction \(interaction.id) names unknown concept \(concept)")
                }
                if byConcept[concept]?.last != interactions.count { byConcept[concept, default: []].append(interactions.count) }
            }
            interactions.append(interaction)
        }
        var controlled: [String: String] = [:]
        for row in controlledRows { controlled[try row.decode("ingredient")] = try row.decode("schedule") }
        var mme: [String: [String: MedicationKnowledge.MMEFactor]] = [:]
        for row in mmeRows {
            mme[try row.decode("ingredient"), default: [:]][try row.decode("route")] = MedicationKnowledge.MMEFactor(
                unit: try row.decode("unit"), factor: try Self.decimal(try row.decode("factor")))
        }
        var citations: [String: String] = [:]
        for row in sources { citations[try row.decode("id")] = try row.decode("citation") }
        let conceptSets = Dictionary(uniqueKeysWithValues: ingredientNames.keys.map { ($0, Set([$0] + (classesOf[$0] ?? []))) })
        return MedicationKnowledge(version: version, products: products, ingredientCodes: ingredientCodes, ingredientNames: ingredientNames,
                                   classes: classes, classesOf: classesOf, interactions: interactions, interactionsByConcept: byConcept,
                                   controlled: controlled, mmeFactors: mme, citations: citations, conceptSets: conceptSets)
    }

    private static func decimal(_ text: String) throws -> Decimal {
        guard let value = Decimal(string: text) else { throw PostgresError(.decoding, message: "bad numeric in the medication knowledge") }
        return value
    }
}
