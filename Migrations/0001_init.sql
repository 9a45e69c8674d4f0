-- CareLedger schema, migration 0001.
-- Append-only tables (ledger entries, tree heads, audit events) attach this trigger function for
-- UPDATE, DELETE and TRUNCATE, so the database itself refuses to rewrite history.
CREATE FUNCTION refuse_modification() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
