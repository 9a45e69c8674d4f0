-- CareLedger schema, migration 0004: patients, their identifiers and custodians.
-- Demographics live only inside `resource`, sealed (AES-256-GCM) under the patient's own data key,
-- which is stored wrapped by the master key. Identifiers are stored only as keyed hashes (blind
-- indexes), so the database alone reveals neither who a patient is nor which numbers they carry.

CREATE TABLE patients (
    id                text PRIMARY KEY,
    wrapped_data_key  bytea,
    resource          bytea,
    registered_by     text NOT NULL REFERENCES organizations (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    erased_at         timestamptz,
    CHECK ((erased_at IS NULL) = (wrapped_data_key IS NOT NULL))
);

-- One identifier (system + value) belongs to one patient.
CREATE TABLE patient_identifiers (
    blind_index  bytea PRIMARY KEY CHECK (length(blind_index) = 32),
    patient_id   text NOT NULL REFERENCES patients (id),
    added_by     text NOT NULL REFERENCES organizations (id),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patient_identifiers_by_patient ON patient_identifiers (patient_id);

-- Organizations with a care relationship: they registered the patient or one of its identifiers.
CREATE TABLE patient_custodians (
    patient_id  text NOT NULL REFERENCES patients (id),
    org_id      text NOT NULL REFERENCES organizations (id),
    since       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, org_id)
);
CREATE INDEX patient_custodians_by_org ON patient_custodians (org_id, patient_id);
