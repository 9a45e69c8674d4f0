-- CareLedger schema, migration 0003: the verifiable ledger (RFC 9162 Merkle log).
--
-- Domain transactions write to ledger_queue in the same transaction as their change; one
-- sequencer at a time (advisory lock) moves queued rows into ledger_entries with dense sequence
-- numbers, stores the subtree hashes the new leaves complete, and signs a tree head. The log tables
-- are append-only: triggers refuse UPDATE, DELETE and TRUNCATE, and the serving role should hold
-- only SELECT and INSERT on them (see README, "Database roles").

CREATE TABLE ledger_queue (
    id           bigserial PRIMARY KEY,
    type         text NOT NULL,
    actor        text NOT NULL,
    ref          text NOT NULL,
    hash         text NOT NULL,
    enqueued_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- No NOTIFY per queued row: NOTIFY takes a database-wide lock at commit, which serialized writers
-- (measured: 15.5k entries/s with it). The elected sequencer polls the queue every few milliseconds
-- instead, and an instance pokes its own sequencer when it queues something.

-- One row per leaf. `entry` holds the entry's RFC 8785 canonical JSON bytes; leaf_hash is
-- SHA-256(0x00 || entry).
CREATE TABLE ledger_entries (
    seq           bigint PRIMARY KEY CHECK (seq >= 0),
    entry         bytea NOT NULL,
    leaf_hash     bytea NOT NULL CHECK (length(leaf_hash) = 32),
    queue_id      bigint NOT NULL UNIQUE,
    type          text NOT NULL,
    ref           text NOT NULL,
    -- When the domain transaction queued it, and when the sequencing batch took it: the lag.
    enqueued_at   timestamptz NOT NULL,
    sequenced_at  timestamptz NOT NULL
);

-- Hashes of perfect subtrees above the leaves: node (level, idx) covers leaves
-- [idx * 2^level, (idx + 1) * 2^level). Any root or proof is O(log n) of these.
CREATE TABLE ledger_nodes (
    level  smallint NOT NULL CHECK (level BETWEEN 1 AND 62),
    idx    bigint NOT NULL CHECK (idx >= 0),
    hash   bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- Public keys that have signed tree heads; key_id is the hex SHA-256 of the raw Ed25519 key.
CREATE TABLE ledger_keys (
    key_id      text PRIMARY KEY,
    name        text NOT NULL,
    public_key  bytea NOT NULL CHECK (length(public_key) = 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Signed tree heads: each is a C2SP checkpoint, stored as the whole signed note.
CREATE TABLE ledger_heads (
    tree_size   bigint PRIMARY KEY CHECK (tree_size >= 0),
    root_hash   bytea NOT NULL CHECK (length(root_hash) = 32),
    key_id      text NOT NULL REFERENCES ledger_keys (key_id),
    checkpoint  text NOT NULL,
    signed_at   timestamptz NOT NULL DEFAULT now()
);

-- Documents organizations notarize: the entry's ref is the anchor id, never their own reference.
CREATE TABLE ledger_anchors (
    id          text PRIMARY KEY,
    org_id      text NOT NULL REFERENCES organizations (id),
    kind        text NOT NULL,
    reference   text NOT NULL,
    hash        text NOT NULL,
    queue_id    bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Runs of audit events anchored as one `audit.batch` entry each: the hash covers the canonical
-- JSON of events first_seq..last_seq, so editing or deleting one is detectable.
CREATE TABLE audit_batches (
    first_seq  bigint PRIMARY KEY,
    last_seq   bigint NOT NULL UNIQUE CHECK (last_seq >= first_seq),
    hash       text NOT NULL,
    queue_id   bigint NOT NULL
);

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['ledger_entries', 'ledger_nodes', 'ledger_keys', 'ledger_heads', 'ledger_anchors', 'audit_batches'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW EXECUTE FUNCTION refuse_modification()',
                       name || '_append_only', name);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION refuse_modification()',
                       name || '_no_truncate', name);
    END LOOP;
END;
$$;
