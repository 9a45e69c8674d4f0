-- CareLedger schema, migration 0015: the state of a device that RFID sightings and telemetry move
-- many times a second lives apart from its registry row. On the wide registry row, with eight
-- indexes, one of them over last_seen_at, every sighting was a full new row version and eight
-- index insertions; at 100,000 devices those pages no longer fit the buffer cache and ingest fell
-- to a fifth. Here the row is narrow, telemetry updates stay heap-only (no index covers what
-- they change) and a sighting adds one entry to the not-seen index besides the primary key.
CREATE TABLE device_state (
    device_id          text PRIMARY KEY REFERENCES devices (id),
    last_seen_at       timestamptz,
    last_seen_location text,
    last_seen_org      text,
    away_alerted       boolean NOT NULL DEFAULT false,
    not_seen_alerted   boolean NOT NULL DEFAULT false,
    last_telemetry_at  timestamptz,
    gap_alerted        boolean NOT NULL DEFAULT false,
    last_counter       bigint,
    -- For the not-seen report: the device's owner_org (which never changes) and its last sighting,
    -- or its registration when never seen. Two index entries per sighting on this narrow row buy
    -- a report that reads the stale devices only, instead of every device of a site.
    owner              text NOT NULL,
    seen_at            timestamptz NOT NULL
) WITH (fillfactor = 50);
CREATE INDEX device_state_by_owner_seen ON device_state (owner, seen_at);

INSERT INTO device_state (device_id, last_seen_at, last_seen_location, last_seen_org, away_alerted, not_seen_alerted,
                          last_telemetry_at, gap_alerted, last_counter, owner, seen_at)
SELECT id, last_seen_at, last_seen_location, last_seen_org, away_alerted, not_seen_alerted, last_telemetry_at, gap_alerted, last_counter,
       owner_org, coalesce(last_seen_at, created_at)
FROM devices;

-- Dropping the columns drops devices_by_owner_seen and devices_telemetry_due with them.
ALTER TABLE devices DROP COLUMN last_seen_at, DROP COLUMN last_seen_location, DROP COLUMN last_seen_org, DROP COLUMN away_alerted,
    DROP COLUMN not_seen_alerted, DROP COLUMN last_telemetry_at, DROP COLUMN gap_alerted, DROP COLUMN last_counter;

-- The last sighting of a tag at a reader is rewritten at every sighting: room for HOT versions.
ALTER TABLE rfid_sightings SET (fillfactor = 50);

-- The availability answer counts an owner's devices of a DI by status and location; with the
-- location carried in the index that is an index-only scan, now that sightings no longer rewrite
-- the registry rows and leave their pages not all-visible.
DROP INDEX devices_by_owner_di;
CREATE INDEX devices_by_owner_di ON devices (owner_org, di, status, id) INCLUDE (location);
