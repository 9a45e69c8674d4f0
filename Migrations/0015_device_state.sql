-- CareLedger schema, migration 0015: the state of a device that RFID sightings and telemetry move
-- many times a second lives apart from its registry row. On the wide registry row, with eight
-- indexes, one of them over last_seen_at, every sighting was a full new row version and eight
-- index insertions; at 100,000 devices those pages no longer fit the buffer cache and ingest fell
-- to a fifth. Here no index covers a column that changes and pages keep room for new versions,
-- so the updates stay heap-only.
CREATE TABLE device_state (
    device_id          text PRIMARY KEY REFERENCES devices (id),
    last_seen_at       timestamptz,
    last_seen_location text,
    last_seen_org      text,
    away_alerted       boolean NOT NULL DEFAULT false,
    not_seen_alerted   boolean NOT NULL DEFAULT false,
    last_telemetry_at  timestamptz,
    gap_alerted        boolean NOT NULL DEFAULT false,
    last_counter       bigint
) WITH (fillfactor = 50);

INSERT INTO device_state (device_id, last_seen_at, last_seen_location, last_seen_org, away_alerted, not_seen_alerted,
                          last_telemetry_at, gap_alerted, last_counter)
SELECT id, last_seen_at, last_seen_location, last_seen_org, away_alerted, not_seen_alerted, last_telemetry_at, gap_alerted, last_counter
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
