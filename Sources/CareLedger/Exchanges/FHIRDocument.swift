import Ledger

/// A clinical document as exchanges accept it: a FHIR R4 resource, or a Bundle whose entries are.
/// Nothing else about it is judged here; it is the sender's document.
enum FHIRDocument {
    /// Every concrete resource type FHIR R4 (4.0.1) defines, from its resource list: the abstract
    /// Resource and DomainResource are not resources anyone sends. Checked once against the R4
    /// model classes of fhir.resources 5.1.1 (FHIR 4.0.1): the same 146 names.
    static let r4ResourceTypes: Set<String> = [
        "Account", "ActivityDefinition", "AdverseEvent", "AllergyIntolerance", "Appointment", "AppointmentResponse",
        "AuditEvent", "Basic", "Binary", "BiologicallyDerivedProduct", "BodyStructure", "Bundle", "CapabilityStatement",
        "CarePlan", "CareTeam", "CatalogEntry", "ChargeItem", "ChargeItemDefinition", "Claim", "ClaimResponse",
        "ClinicalImpression", "CodeSystem", "Communication", "CommunicationRequest", "CompartmentDefinition", "Composition",
        "ConceptMap", "Condition", "Consent", "Contract", "Coverage", "CoverageEligibilityRequest",
        "CoverageEligibilityResponse", "DetectedIssue", "Device", "DeviceDefinition", "DeviceMetric", "DeviceRequest",
        "DeviceUseStatement", "DiagnosticReport", "DocumentManifest", "DocumentReference", "EffectEvidenceSynthesis",
        "Encounter", "Endpoint", "EnrollmentRequest", "EnrollmentResponse", "EpisodeOfCare", "EventDefinition", "Evidence",
        "EvidenceVariable", "ExampleScenario", "ExplanationOfBenefit", "FamilyMemberHistory", "Flag", "Goal",
        "GraphDefinition", "Group", "GuidanceResponse", "HealthcareService", "ImagingStudy", "Immunization",
        "ImmunizationEvaluation", "ImmunizationRecommendation", "ImplementationGuide", "InsurancePlan", "Invoice", "Library",
        "Linkage", "List", "Location", "Measure", "MeasureReport", "Media", "Medication", "MedicationAdministration",
        "MedicationDispense", "MedicationKnowledge", "MedicationRequest", "MedicationStatement", "MedicinalProduct",
        "MedicinalProductAuthorization", "MedicinalProductContraindication", "MedicinalProductIndication",
        "MedicinalProductIngredient", "MedicinalProductInteraction", "MedicinalProductManufactured",
        "MedicinalProductPackaged", "MedicinalProductPharmaceutical", "MedicinalProductUndesirableEffect", "MessageDefinition",
        "MessageHeader", "MolecularSequence", "NamingSystem", "NutritionOrder", "Observation", "ObservationDefinition",
        "OperationDefinition", "OperationOutcome", "Organization", "OrganizationAffiliation", "Parameters", "Patient",
        "PaymentNotice", "PaymentReconciliation", "Person", "PlanDefinition", "Practitioner", "PractitionerRole", "Procedure",
        "Provenance", "Questionnaire", "QuestionnaireResponse", "RelatedPerson", "RequestGroup", "ResearchDefinition",
        "ResearchElementDefinition", "ResearchStudy", "ResearchSubject", "RiskAssessment", "RiskEvidenceSynthesis", "Schedule",
        "SearchParameter", "ServiceRequest", "Slot", "Specimen", "SpecimenDefinition", "StructureDefinition", "StructureMap",
        "Subscription", "Substance", "SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein",
        "SubstanceReferenceInformation", "SubstanceSourceMaterial", "SubstanceSpecification", "SupplyDelivery",
        "SupplyRequest", "Task", "TerminologyCapabilities", "TestReport", "TestScript", "ValueSet", "VerificationResult",
        "VisionPrescription",
    ]

    /// Checks `value` at `path`; a Bundle's entries are checked too.
    static func validate(_ value: JSONValue, path: String = "document") throws(DomainError) {
        guard case .object = value else { throw .invalidResource(path, "must be a FHIR resource (a JSON object)") }
        guard let type = value["resourceType"]?.stringValue else { throw .invalidResource("\(path).resourceType", "is missing") }
        guard r4ResourceTypes.contains(type) else { throw .invalidResource("\(path).resourceType", "\"\(type)\" is not a FHIR R4 resource type") }
        guard type == "Bundle", let entries = value["entry"] else { return }
        guard case .array(let list) = entries else { throw .invalidResource("\(path).entry", "must be an array") }
        for (index, entry) in list.enumerated() {
            guard case .object = entry else { throw .invalidResource("\(path).entry[\(index)]", "must be an object") }
            if let resource = entry["resource"] { try validate(resource, path: "\(path).entry[\(index)].resource") }
        }
    }
}
