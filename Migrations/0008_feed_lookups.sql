-- CareLedger schema, migration 0008: feeds read the log forward by seq and look up each entry's
-- object by the queue id it was written with; exchanges had no index for that lookup.
CREATE INDEX exchanges_by_sent_queue_id ON exchanges (sent_queue_id);
