-- CareLedger schema, migration 0007: claims between hospitals and insurers, and the insurers'
-- automatic adjudication rules.
--
-- Every change of a claim (submitted, cancelled, adjudicated) is one row of claim_events, written
-- in the same transaction as its ledger_queue row. The feeds are ordered by that entry's ledger seq,
-- which the single sequencer assigns only after the transaction committed, in batches that become
-- visible whole and in order: so no event can ever appear behind a cursor already handed out.

-- A decision resting on another anchored object (an adjudication on the rule that made it) names
-- that object in its ledger entry: `basis` (its id) and `basisHash` (its hash).
ALTER TABLE ledger_queue ADD COLUMN basis text, ADD COLUMN basis_hash text,
    ADD CONSTRAINT ledger_queue_basis_whole CHECK ((basis IS NULL) = (basis_hash IS NULL));

-- An insurer's rules, kept as registered (RFC 8785 canonical bytes) so their hash can be re-checked;
-- a retired rule stays, because old adjudications point at it.
CREATE TABLE claim_rules (
    id                text PRIMARY KEY,
    insurer_org       text NOT NULL REFERENCES organizations (id),
    rule              bytea NOT NULL,
    rule_hash         text NOT NULL,
    queue_id          bigint NOT NULL,
    created_at        timestamptz NOT NULL,
    retired_at        timestamptz,
    retired_queue_id  bigint
);
CREATE INDEX claim_rules_active ON claim_rules (insurer_org, id) WHERE retired_at IS NULL;

CREATE TABLE claims (
    id            text PRIMARY KEY,
    hospital_org  text NOT NULL REFERENCES organizations (id),
    insurer_org   text NOT NULL REFERENCES organizations (id),
    patient_id    text NOT NULL REFERENCES patients (id),
    status        text NOT NULL CHECK (status IN ('submitted', 'adjudicated', 'cancelled')),
    total         numeric NOT NULL CHECK (total >= 0),
    currency      text NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE INDEX claims_by_patient ON claims (patient_id, id);

-- Each event's document (the Claim, the cancellation, the ClaimResponse) is its RFC 8785 canonical
-- JSON sealed under the patient's data key; document_hash (of the canonical bytes) is what its
-- ledger entry carries. At most one event of each kind per claim: the state machine's last guard.
CREATE TABLE claim_events (
    queue_id       bigint PRIMARY KEY,
    claim_id       text NOT NULL REFERENCES claims (id),
    kind           text NOT NULL CHECK (kind IN ('submitted', 'cancelled', 'adjudicated')),
    insurer_org    text NOT NULL REFERENCES organizations (id),
    hospital_org   text NOT NULL REFERENCES organizations (id),
    actor_org      text NOT NULL REFERENCES organizations (id),
    document       bytea NOT NULL,
    document_hash  text NOT NULL,
    outcome        text,
    rule_id        text REFERENCES claim_rules (id),
    rule_hash      text,
    created_at     timestamptz NOT NULL,
    UNIQUE (claim_id, kind)
);
CREATE INDEX claim_events_for_insurer ON claim_events (insurer_org, queue_id);
CREATE INDEX claim_events_for_hospital ON claim_events (hospital_org, queue_id) WHERE kind = 'adjudicated';

-- A claim's history is only ever added to.
CREATE TRIGGER claim_events_append_only BEFORE UPDATE OR DELETE ON claim_events
    FOR EACH ROW EXECUTE FUNCTION refuse_modification();
CREATE TRIGGER claim_events_no_truncate BEFORE TRUNCATE ON claim_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_modification();
