-- CareLedger schema, migration 0013: the drug supply chain. GS1 keys bound to organizations, EPCIS
-- 2.0 events as captured (each anchored by its CBV 2.0 event hash), the custody state of every
-- serialized item that the events move, shipments awaiting receipt, alerts and recalls.
-- No patient data: packs, sites and organizations only.

-- Company prefixes (6 to 12 digits) of manufacturers: only the owner commissions its GTINs.
CREATE TABLE gs1_company_prefixes (
    prefix           text PRIMARY KEY CHECK (prefix ~ '^[0-9]{6,12}$'),
    organization_id  text NOT NULL REFERENCES organizations (id),
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gs1_company_prefixes_by_org ON gs1_company_prefixes (organization_id);

-- Sites (plants, warehouses, pharmacies, hospitals): an event names only its reporter's own.
CREATE TABLE gs1_locations (
    gln              text PRIMARY KEY CHECK (gln ~ '^[0-9]{13}$'),
    organization_id  text NOT NULL REFERENCES organizations (id),
    name             text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gs1_locations_by_org ON gs1_locations (organization_id);

-- A capture job: the document exactly as sent, and its outcome.
CREATE TABLE epcis_captures (
    id               text PRIMARY KEY,
    organization_id  text NOT NULL REFERENCES organizations (id),
    error_behaviour  text NOT NULL CHECK (error_behaviour IN ('rollback', 'proceed')),
    status           text NOT NULL CHECK (status IN ('running', 'success', 'failed', 'partial')),
    event_count      integer NOT NULL CHECK (event_count >= 0),
    captured_count   integer NOT NULL DEFAULT 0 CHECK (captured_count >= 0),
    errors           jsonb NOT NULL DEFAULT '[]',
    document         bytea NOT NULL,
    created_at       timestamptz NOT NULL,
    finished_at      timestamptz
);
ALTER TABLE epcis_captures ALTER COLUMN document SET STORAGE EXTERNAL;

-- One row per captured event, keyed by its CBV 2.0 hash id. `event` is the event's RFC 8785 form
-- (every field as sent, sensor data included); `sender_event_id` the eventID it came with.
-- `violations` lists the custody rules it broke: such an event is kept (what was claimed matters)
-- but moved nothing. `epcs` are epcList and childEPCs, `any_epcs` also parentID and the
-- transformation lists, all as canonical Digital Link URIs (for MATCH_epc and MATCH_anyEPC).
-- `prefixes` are the CURIE prefixes in force where it was sent, which the hash depends on.
CREATE TABLE epcis_events (
    hash_id          text PRIMARY KEY,
    sender_event_id  text,
    event_id_checked boolean,
    event_type       text NOT NULL,
    event_time       timestamptz NOT NULL,
    record_time      timestamptz NOT NULL,
    action           text,
    biz_step         text,
    disposition      text,
    read_point       text,
    biz_location     text,
    parent_id        text,
    epcs             text[] NOT NULL,
    any_epcs         text[] NOT NULL,
    reporter_org     text NOT NULL REFERENCES organizations (id),
    capture_id       text NOT NULL REFERENCES epcis_captures (id),
    violations       text[] NOT NULL DEFAULT '{}',
    event            bytea NOT NULL,
    prefixes         bytea NOT NULL,
    queue_id         bigint NOT NULL
);
CREATE INDEX epcis_events_by_time ON epcis_events (event_time, hash_id);
CREATE INDEX epcis_events_by_record ON epcis_events (record_time, hash_id);
CREATE INDEX epcis_events_by_epc ON epcis_events USING gin (epcs);
CREATE INDEX epcis_events_by_any_epc ON epcis_events USING gin (any_epcs);
CREATE INDEX epcis_events_by_parent ON epcis_events (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX epcis_events_by_sender_id ON epcis_events (sender_event_id);
CREATE INDEX epcis_events_by_queue_id ON epcis_events (queue_id);
CREATE TRIGGER epcis_events_append_only BEFORE UPDATE OR DELETE ON epcis_events
    FOR EACH ROW EXECUTE FUNCTION refuse_modification();
CREATE TRIGGER epcis_events_no_truncate BEFORE TRUNCATE ON epcis_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_modification();

-- Error declarations: an event retracted, never deleted (its copy with `errorDeclaration` has the
-- same hash, so the declaration is its own row, anchored on its own).
CREATE TABLE epcis_error_declarations (
    hash_id              text NOT NULL,
    declared_by          text NOT NULL REFERENCES organizations (id),
    declaration_time     timestamptz NOT NULL,
    reason               text,
    corrective_event_ids text[] NOT NULL DEFAULT '{}',
    document_hash        text NOT NULL,
    capture_id           text NOT NULL REFERENCES epcis_captures (id),
    queue_id             bigint PRIMARY KEY
);
CREATE INDEX epcis_error_declarations_by_event ON epcis_error_declarations (hash_id);
CREATE TRIGGER epcis_error_declarations_append_only BEFORE UPDATE OR DELETE ON epcis_error_declarations
    FOR EACH ROW EXECUTE FUNCTION refuse_modification();

-- Every serialized item custody applies to: packs (GTIN + serial) and logistic units (SSCC), keyed
-- by canonical Digital Link URI. `parent` is the unit it is packed in; custody of a unit is custody
-- of everything inside it. `pending_receiver` is set while a shipment awaits receipt.
CREATE TABLE supply_items (
    epc              text PRIMARY KEY,
    gtin             text,
    serial           text,
    lot              text,
    expiry           date,
    manufacturer_org text REFERENCES organizations (id),
    custodian_org    text NOT NULL REFERENCES organizations (id),
    state            text NOT NULL CHECK (state IN ('active', 'in_transit', 'dispensed', 'decommissioned', 'destroyed', 'stolen')),
    parent           text REFERENCES supply_items (epc),
    pending_receiver text REFERENCES organizations (id),
    commissioned_by  text,
    last_event       text NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX supply_items_by_parent ON supply_items (parent) WHERE parent IS NOT NULL;
CREATE INDEX supply_items_by_lot ON supply_items (gtin, lot);

-- Everyone who has held an item (its manufacturer, every custodian, every receiver it was shipped
-- to): they may see its events.
CREATE TABLE supply_item_holders (
    epc              text NOT NULL,
    organization_id  text NOT NULL REFERENCES organizations (id),
    PRIMARY KEY (epc, organization_id)
);
CREATE INDEX supply_item_holders_by_org ON supply_item_holders (organization_id, epc);

CREATE TABLE supply_shipments (
    id               bigserial PRIMARY KEY,
    epc              text NOT NULL REFERENCES supply_items (epc),
    from_org         text NOT NULL REFERENCES organizations (id),
    to_org           text REFERENCES organizations (id),
    shipped_event    text NOT NULL,
    shipped_at       timestamptz NOT NULL,
    received_event   text,
    received_at      timestamptz,
    overdue_alerted  boolean NOT NULL DEFAULT false
);
CREATE INDEX supply_shipments_pending ON supply_shipments (shipped_at) WHERE received_at IS NULL;
CREATE INDEX supply_shipments_by_epc ON supply_shipments (epc);

CREATE TABLE supply_recalls (
    id               text PRIMARY KEY,
    gtin             text NOT NULL CHECK (gtin ~ '^[0-9]{14}$'),
    lots             text[] NOT NULL,
    organization_id  text NOT NULL REFERENCES organizations (id),
    reason           text NOT NULL,
    document_hash    text NOT NULL,
    queue_id         bigint NOT NULL,
    created_at       timestamptz NOT NULL
);
CREATE INDEX supply_recalls_by_gtin ON supply_recalls (gtin);
CREATE TRIGGER supply_recalls_append_only BEFORE UPDATE OR DELETE ON supply_recalls
    FOR EACH ROW EXECUTE FUNCTION refuse_modification();

-- Alerts: `parties` are the organizations that see it (the GTIN's manufacturer and those involved;
-- national regulators see all). Raised and resolved once, each anchored; the feed follows the
-- raising entry's ledger seq.
CREATE TABLE supply_alerts (
    id               text PRIMARY KEY,
    kind             text NOT NULL,
    epc              text,
    gtin             text,
    serial           text,
    event_hash_id    text,
    detail           text NOT NULL,
    parties          text[] NOT NULL,
    document_hash    text NOT NULL,
    queue_id         bigint NOT NULL,
    raised_at        timestamptz NOT NULL,
    resolution       text CHECK (resolution IN ('cleared', 'illegitimate')),
    resolution_reason text,
    resolved_by      text REFERENCES organizations (id),
    resolved_at      timestamptz,
    resolution_hash  text,
    resolve_queue_id bigint,
    CHECK ((resolution IS NULL) = (resolve_queue_id IS NULL))
);
CREATE INDEX supply_alerts_by_queue_id ON supply_alerts (queue_id);
CREATE INDEX supply_alerts_by_epc ON supply_alerts (epc);
