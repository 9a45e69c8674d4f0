-- CareLedger schema, migration 0016: the findings as a prescription's 201 answered them (each with
-- whether it blocked, was shown without its details, or was acknowledged before), sealed under the
-- patient's key. The anchored decision record keeps the DetectedIssues only, so without this a
-- retry with the same Idempotency-Key answered no findings at all where the first answer had some.
-- NULL for prescriptions written before it; their replays answer the decision record's findings.
ALTER TABLE prescriptions ADD COLUMN answer bytea;
