-- CareLedger schema, migration 0006: health-data exchanges between organizations.
-- The document is stored as its RFC 8785 canonical JSON, sealed under the patient's data key; its
-- hash (of the canonical bytes) is anchored as `exchange.sent`, and the recipient's first read as
-- `exchange.received`.

CREATE TABLE exchanges (
    id                 text PRIMARY KEY,
    sender_org         text NOT NULL REFERENCES organizations (id),
    recipient_org      text NOT NULL REFERENCES organizations (id),
    patient_id         text NOT NULL REFERENCES patients (id),
    purpose            text NOT NULL,
    category           text NOT NULL,
    document           bytea NOT NULL,
    document_hash      text NOT NULL,
    break_glass_reason text,
    sent_queue_id      bigint NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    received_at        timestamptz,
    received_hash      text,
    received_queue_id  bigint
);
CREATE INDEX exchanges_by_recipient ON exchanges (recipient_org, id);
CREATE INDEX exchanges_by_sender ON exchanges (sender_org, id);
CREATE INDEX exchanges_by_patient ON exchanges (patient_id, id);

-- Idempotency-Key: the same key and body give the original answer, a different body 409.
CREATE TABLE idempotency_keys (
    org_id        text NOT NULL REFERENCES organizations (id),
    key           text NOT NULL,
    request_hash  text NOT NULL,
    resource_id   text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, key)
);
