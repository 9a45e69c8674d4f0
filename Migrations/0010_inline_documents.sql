-- CareLedger schema, migration 0010: sealed exchange documents stay in the row.
-- A sealed document is AES-GCM output, which no compression shrinks, and a few kilobytes: above
-- the default 2 KB threshold PostgreSQL tried to compress it on every insert, failed, and moved it
-- to the TOAST table in ~2 KB chunks (a heap and an index insert each). Keeping rows of up to a
-- page inline costs about the same space and saves that work on the send path; larger documents
-- are still moved out, uncompressed (EXTERNAL).
ALTER TABLE exchanges SET (toast_tuple_target = 8160);
ALTER TABLE exchanges ALTER COLUMN document SET STORAGE EXTERNAL;
