-- CareLedger schema, migration 0014: medical devices and IoMT. The UDI registry, each device's
-- lifecycle moves, RFID read batches and the sightings they collapse into, device signing keys,
-- signed telemetry sealed under the patient's key, device recalls and alerts.

-- Sites a device can be at, named by their owner (a ward, a store room), optionally a GLN, and
-- the RFID readers there.
CREATE TABLE device_locations (
    organization_id  text NOT NULL REFERENCES organizations (id),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    gln              text CHECK (gln ~ '^[0-9]{13}$'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, name)
);

CREATE TABLE device_readers (
    organization_id  text NOT NULL REFERENCES organizations (id),
    reader_id        text NOT NULL,
    location_name    text NOT NULL,
    PRIMARY KEY (organization_id, reader_id),
    FOREIGN KEY (organization_id, location_name) REFERENCES device_locations (organization_id, name)
);

-- One row per device. `resource` is the FHIR Device exactly as sent; `di` and the production
-- identifiers come from its udiCarrier. `status` follows DeviceLifecycle; `last_seen_*` the latest
-- RFID sighting; `last_counter` the highest accepted telemetry counter.
CREATE TABLE devices (
    id                 text PRIMARY KEY,
    owner_org          text NOT NULL REFERENCES organizations (id),
    registered_by      text NOT NULL REFERENCES organizations (id),
    manufacturer_org   text REFERENCES organizations (id),
    type               text NOT NULL,
    di                 text,
    issuer             text,
    agency             text,
    lot                text,
    serial             text,
    manufacture_date   text,
    expiry_date        text,
    status             text NOT NULL CHECK (status IN ('received', 'available', 'in_use', 'cleaning', 'maintenance', 'recalled', 'lost', 'retired')),
    location           text NOT NULL,
    patient_id         text REFERENCES patients (id),
    rfid_epc           text UNIQUE,
    telemetry_interval integer CHECK (telemetry_interval > 0),
    last_seen_at       timestamptz,
    last_seen_location text,
    last_seen_org      text,
    away_alerted       boolean NOT NULL DEFAULT false,
    not_seen_alerted   boolean NOT NULL DEFAULT false,
    last_telemetry_at  timestamptz,
    gap_alerted        boolean NOT NULL DEFAULT false,
    last_counter       bigint,
    resource           bytea NOT NULL,
    document_hash      text NOT NULL,
    queue_id           bigint NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
CREATE INDEX devices_by_owner ON devices (owner_org, id);
CREATE INDEX devices_by_owner_type ON devices (owner_org, type, id);
CREATE INDEX devices_by_owner_status ON devices (owner_org, status, id);
CREATE INDEX devices_by_owner_location ON devices (owner_org, location, id);
CREATE INDEX devices_by_owner_di ON devices (owner_org, di, status, id);
CREATE INDEX devices_by_owner_seen ON devices (owner_org, last_seen_at, id);
CREATE INDEX devices_by_lot ON devices (di, lot);
CREATE INDEX devices_telemetry_due ON devices (last_telemetry_at) WHERE telemetry_interval IS NOT NULL AND NOT gap_alerted;

-- Every lifecycle move, as anchored.
CREATE TABLE device_events (
    queue_id         bigint PRIMARY KEY,
    device_id        text NOT NULL REFERENCES devices (id),
    from_status      text,
    to_status        text NOT NULL,
    location         text,
    patient_id       text,
    reason           text,
    actor_org        text NOT NULL REFERENCES organizations (id),
    document_hash    text NOT NULL,
    at               timestamptz NOT NULL
);
CREATE INDEX device_events_by_device ON device_events (device_id, queue_id);
CREATE TRIGGER device_events_append_only BEFORE UPDATE OR DELETE ON device_events
    FOR EACH ROW EXECUTE FUNCTION refuse_modification();
CREATE TRIGGER device_events_no_truncate BEFORE TRUNCATE ON device_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_modification();

CREATE TABLE device_recalls (
    id               text PRIMARY KEY,
    di               text NOT NULL,
    lots             text[] NOT NULL,
    organization_id  text NOT NULL REFERENCES organizations (id),
    reason           text NOT NULL,
    devices_marked   integer NOT NULL,
    document_hash    text NOT NULL,
    queue_id         bigint NOT NULL,
    created_at       timestamptz NOT NULL
);
CREATE TRIGGER device_recalls_append_only BEFORE UPDATE OR DELETE ON device_recalls
    FOR EACH ROW EXECUTE FUNCTION refuse_modification();

-- A reader's batch as sent, in RFC 8785 form, anchored as one entry.
CREATE TABLE rfid_batches (
    id               text PRIMARY KEY,
    organization_id  text NOT NULL REFERENCES organizations (id),
    reader           text NOT NULL,
    read_count       integer NOT NULL,
    sighting_count   integer NOT NULL,
    document         bytea NOT NULL,
    document_hash    text NOT NULL,
    queue_id         bigint NOT NULL,
    created_at       timestamptz NOT NULL
);
CREATE TRIGGER rfid_batches_append_only BEFORE UPDATE OR DELETE ON rfid_batches
    FOR EACH ROW EXECUTE FUNCTION refuse_modification();

-- The last sighting of each tag at each reader: repeats inside the window, across batches too,
-- collapse into it.
CREATE TABLE rfid_sightings (
    organization_id  text NOT NULL,
    reader           text NOT NULL,
    epc              text NOT NULL,
    sighted_at       timestamptz NOT NULL,
    PRIMARY KEY (organization_id, reader, epc)
);

-- Tags nobody registered, as an organization's readers saw them.
CREATE TABLE rfid_unknown_tags (
    organization_id  text NOT NULL REFERENCES organizations (id),
    epc              text NOT NULL,
    first_seen       timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    last_location    text NOT NULL,
    PRIMARY KEY (organization_id, epc)
);

CREATE TABLE device_keys (
    id               text PRIMARY KEY,
    device_id        text NOT NULL REFERENCES devices (id),
    public_key       bytea NOT NULL CHECK (length(public_key) = 32),
    created_by       text NOT NULL REFERENCES organizations (id),
    created_at       timestamptz NOT NULL,
    revoked_at       timestamptz,
    replaced_by      text REFERENCES device_keys (id),
    document_hash    text NOT NULL,
    queue_id         bigint NOT NULL
);
CREATE INDEX device_keys_by_device ON device_keys (device_id);

-- One anchored batch of accepted readings: its ledger entry's hash is the Merkle root of the
-- readings' digests (SHA-256 of each compact JWS), in `position` order.
CREATE TABLE telemetry_batches (
    id               text PRIMARY KEY,
    organization_id  text NOT NULL REFERENCES organizations (id),
    size             integer NOT NULL CHECK (size > 0),
    root             text NOT NULL,
    queue_id         bigint NOT NULL,
    created_at       timestamptz NOT NULL
);
CREATE TRIGGER telemetry_batches_append_only BEFORE UPDATE OR DELETE ON telemetry_batches
    FOR EACH ROW EXECUTE FUNCTION refuse_modification();

-- An accepted reading: the compact JWS sealed under the patient's data key; its digest in clear
-- (a hash, no PHI) for the batch proof.
CREATE TABLE telemetry_observations (
    id               text PRIMARY KEY,
    batch_id         text NOT NULL REFERENCES telemetry_batches (id),
    position         integer NOT NULL,
    device_id        text NOT NULL REFERENCES devices (id),
    patient_id       text NOT NULL REFERENCES patients (id),
    owner_org        text NOT NULL REFERENCES organizations (id),
    key_id           text NOT NULL,
    counter          bigint NOT NULL,
    issued_at        timestamptz NOT NULL,
    digest           bytea NOT NULL,
    sealed           bytea NOT NULL,
    received_at      timestamptz NOT NULL,
    UNIQUE (batch_id, position)
);
CREATE INDEX telemetry_observations_by_patient ON telemetry_observations (patient_id, issued_at, id);
CREATE TRIGGER telemetry_observations_append_only BEFORE UPDATE OR DELETE ON telemetry_observations
    FOR EACH ROW EXECUTE FUNCTION refuse_modification();

-- Alerts for a device's owner (and, for a device seen elsewhere, the site that saw it); the feed
-- follows the raising entry's ledger seq.
CREATE TABLE device_alerts (
    id               text PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('unknown_tag', 'left_owner', 'not_seen', 'recalled', 'telemetry_gap', 'bad_signature')),
    device_id        text,
    epc              text,
    detail           text NOT NULL,
    parties          text[] NOT NULL,
    document_hash    text NOT NULL,
    queue_id         bigint NOT NULL,
    raised_at        timestamptz NOT NULL
);
CREATE INDEX device_alerts_by_queue_id ON device_alerts (queue_id);
CREATE TRIGGER device_alerts_append_only BEFORE UPDATE OR DELETE ON device_alerts
    FOR EACH ROW EXECUTE FUNCTION refuse_modification();
