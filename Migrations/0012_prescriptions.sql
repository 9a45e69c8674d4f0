-- CareLedger schema, migration 0012: allergies, prescriptions and their fills.
-- Documents are RFC 8785 canonical JSON sealed under the patient's data key; the ledger carries
-- only their hashes. What a check needs to know about a medication (which drug, how much) stays
-- inside the sealed documents: the clear columns are what the state machine and the access
-- decisions need (who recorded it, whether it may still be filled), nothing about the drug.

CREATE TABLE allergies (
    id             text PRIMARY KEY,
    patient_id     text NOT NULL REFERENCES patients (id),
    recorded_by    text NOT NULL REFERENCES organizations (id),
    document       bytea NOT NULL,
    document_hash  text NOT NULL,
    queue_id       bigint NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE INDEX allergies_by_patient ON allergies (patient_id, id);
CREATE TRIGGER allergies_append_only BEFORE UPDATE OR DELETE ON allergies
    FOR EACH ROW EXECUTE FUNCTION refuse_modification();
CREATE TRIGGER allergies_no_truncate BEFORE TRUNCATE ON allergies
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_modification();

-- `decision` is the canonical decision record (the MedicationRequest, the findings as shown to the
-- prescriber, the knowledge version, the override) whose hash `prescription.created` anchors.
-- `dispenser` is the pharmacy the prescription names (an organization id), or the performer as
-- written when it names none of ours, so that no one fills it.
CREATE TABLE prescriptions (
    id               text PRIMARY KEY,
    patient_id       text NOT NULL REFERENCES patients (id),
    prescriber_org   text NOT NULL REFERENCES organizations (id),
    prescriber       text NOT NULL,
    dispenser        text,
    active           boolean NOT NULL,
    fills_allowed    integer NOT NULL CHECK (fills_allowed >= 1),
    fills            integer NOT NULL DEFAULT 0 CHECK (fills >= 0 AND fills <= fills_allowed),
    fill_quantity    numeric CHECK (fill_quantity > 0),
    fill_unit        text,
    valid_from       timestamptz,
    valid_until      timestamptz,
    document         bytea NOT NULL,
    decision         bytea NOT NULL,
    decision_hash    text NOT NULL,
    knowledge_version text NOT NULL,
    queue_id         bigint NOT NULL,
    created_at       timestamptz NOT NULL,
    cancelled_at     timestamptz,
    cancellation     bytea,
    cancellation_hash text,
    cancel_queue_id  bigint,
    CHECK ((cancelled_at IS NULL) = (cancel_queue_id IS NULL))
);
CREATE INDEX prescriptions_by_patient ON prescriptions (patient_id, created_at DESC);

-- One row per fill; the prescription row's lock orders concurrent fills, and the unique fill
-- number is the last guard against a prescription filled more often than written.
CREATE TABLE dispenses (
    queue_id         bigint PRIMARY KEY,
    prescription_id  text NOT NULL REFERENCES prescriptions (id),
    fill_number      integer NOT NULL CHECK (fill_number >= 1),
    pharmacy_org     text NOT NULL REFERENCES organizations (id),
    patient_id       text NOT NULL REFERENCES patients (id),
    quantity         numeric NOT NULL CHECK (quantity > 0),
    document         bytea NOT NULL,
    document_hash    text NOT NULL,
    created_at       timestamptz NOT NULL,
    UNIQUE (prescription_id, fill_number)
);
CREATE INDEX dispenses_by_patient ON dispenses (patient_id, created_at DESC);
CREATE TRIGGER dispenses_append_only BEFORE UPDATE OR DELETE ON dispenses
    FOR EACH ROW EXECUTE FUNCTION refuse_modification();
CREATE TRIGGER dispenses_no_truncate BEFORE TRUNCATE ON dispenses
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_modification();

-- What a prescriber answered to a finding, so the same finding for the same patient is shown as
-- acknowledged at the next renewal instead of raised again. `finding` is a keyed hash (the
-- patient keys' blind index) of the finding's kind and the drugs involved: no drug in clear.
CREATE TABLE prescription_acknowledgements (
    patient_id       text NOT NULL REFERENCES patients (id),
    prescriber       text NOT NULL,
    finding          bytea NOT NULL,
    prescription_id  text NOT NULL REFERENCES prescriptions (id),
    acknowledged_at  timestamptz NOT NULL,
    PRIMARY KEY (patient_id, prescriber, finding, prescription_id)
);
CREATE TRIGGER prescription_acknowledgements_append_only BEFORE UPDATE OR DELETE ON prescription_acknowledgements
    FOR EACH ROW EXECUTE FUNCTION refuse_modification();

-- Sealed documents do not compress (see 0010): keep rows of up to a page inline, and store larger
-- ones out of line without first trying to compress them.
ALTER TABLE prescriptions SET (toast_tuple_target = 8160);
ALTER TABLE prescriptions ALTER COLUMN document SET STORAGE EXTERNAL, ALTER COLUMN decision SET STORAGE EXTERNAL,
    ALTER COLUMN cancellation SET STORAGE EXTERNAL;
ALTER TABLE allergies SET (toast_tuple_target = 8160);
ALTER TABLE allergies ALTER COLUMN document SET STORAGE EXTERNAL;
ALTER TABLE dispenses SET (toast_tuple_target = 8160);
ALTER TABLE dispenses ALTER COLUMN document SET STORAGE EXTERNAL;
