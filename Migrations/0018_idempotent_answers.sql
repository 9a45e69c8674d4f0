-- CareLedger schema, migration 0018: what a write answered, for writes whose answer is not all in
-- the rows they made (how many alerts a capture or an RFID batch raised), so that a retry with the
-- same Idempotency-Key answers the same. NULL for the writes whose rows hold their whole answer.
ALTER TABLE idempotency_keys ADD COLUMN answer bytea;
