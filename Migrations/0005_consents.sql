-- CareLedger schema, migration 0005: patient consents (FHIR Consent semantics).
-- A consent's grant and its revocation are each anchored in the ledger: `document` and
-- `revocation` hold the canonical JSON whose hash the entries carry, so verify can re-hash them.

CREATE TABLE consents (
    id              text PRIMARY KEY,
    patient_id      text NOT NULL REFERENCES patients (id),
    grantee_org     text REFERENCES organizations (id),
    grantee_kind    text,
    purposes        text[] NOT NULL,
    categories      text[] NOT NULL,
    all_categories  boolean NOT NULL,
    period_start    timestamptz,
    period_end      timestamptz,
    provision       text NOT NULL CHECK (provision IN ('permit', 'deny')),
    evidence_hash   text,
    recorded_by     text NOT NULL REFERENCES organizations (id),
    document        bytea NOT NULL,
    queue_id        bigint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    revocation      bytea,
    revocation_queue_id bigint,
    CHECK ((grantee_org IS NULL) <> (grantee_kind IS NULL)),
    CHECK ((revoked_at IS NULL) = (revocation IS NULL))
);
CREATE INDEX consents_by_patient ON consents (patient_id, id);
