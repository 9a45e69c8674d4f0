-- CareLedger schema, migration 0017: what each server instance has granted and holds open, so that
-- the limits protecting the service (a key's request rate, an address's authentication-failure
-- budget, an address's connections) hold for the deployment as a whole, not once per instance.
-- `key` and `auth` rows count the tokens an instance granted since it started (it adds to them);
-- `conn` rows are its open connections from an address now. UNLOGGED: soft state, refreshed every
-- tenth of a second, that a crash may lose without harm; rows of instances gone quiet are deleted.
CREATE UNLOGGED TABLE limit_usage (
    instance   text NOT NULL,
    scope      text NOT NULL CHECK (scope IN ('key', 'auth', 'conn')),
    name       text NOT NULL,
    amount     bigint NOT NULL CHECK (amount >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance, scope, name)
);
