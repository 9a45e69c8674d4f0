-- CareLedger schema, migration 0002: organizations, API keys, the audit trail.

CREATE TABLE organizations (
    id          text PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind        text NOT NULL CHECK (kind IN ('platform', 'hospital', 'insurer', 'national', 'pharmacy',
                                              'manufacturer', 'distributor', 'auditor')),
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- There is one platform: the operator's own organization, home of the admin keys.
CREATE UNIQUE INDEX organizations_one_platform ON organizations (kind) WHERE kind = 'platform';

-- Only a SHA-256 of each key's secret is stored; the secret is shown once, at creation.
CREATE TABLE api_keys (
    id            text PRIMARY KEY,
    org_id        text NOT NULL REFERENCES organizations (id),
    role          text NOT NULL CHECK (role IN ('admin', 'hospital', 'insurer', 'national', 'pharmacy', 'manufacturer',
                                                'distributor', 'auditor', 'patient', 'device')),
    label         text NOT NULL DEFAULT '' CHECK (length(label) <= 200),
    secret_sha256 bytea NOT NULL CHECK (length(secret_sha256) = 32),
    patient_id    text CHECK ((role = 'patient') = (patient_id IS NOT NULL)),
    device_id     text CHECK ((role = 'device') = (device_id IS NOT NULL)),
    rate_limit    integer CHECK (rate_limit > 0),
    expires_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE INDEX api_keys_by_org ON api_keys (org_id, id);

-- Who did what to which resource, permitted or denied. Append-only: the trigger refuses any rewrite.
CREATE TABLE audit_events (
    seq             bigserial PRIMARY KEY,
    time            timestamptz NOT NULL DEFAULT now(),
    request_id      text NOT NULL,
    actor_org       text,
    key_id          text,
    role            text,
    action          text NOT NULL,
    resource_type   text,
    resource_id     text,
    patient_id      text,
    purpose         text,
    decision        text NOT NULL CHECK (decision IN ('permit', 'deny')),
    reason          text NOT NULL,
    client_address  text
);
CREATE INDEX audit_events_by_patient ON audit_events (patient_id, seq) WHERE patient_id IS NOT NULL;
CREATE INDEX audit_events_by_actor ON audit_events (actor_org, seq);
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION refuse_modification();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_modification();
