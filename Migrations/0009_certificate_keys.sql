-- CareLedger schema, migration 0009: keys bound to a TLS client certificate (mutual TLS).
-- Such a key has no secret: the certificate's SHA-256 (lowercase hex of its DER bytes) names it,
-- and the TLS handshake proves the client holds the certificate's private key.
ALTER TABLE api_keys
    ALTER COLUMN secret_sha256 DROP NOT NULL,
    ADD COLUMN certificate_sha256 text UNIQUE CHECK (certificate_sha256 ~ '^[0-9a-f]{64}$'),
    ADD CONSTRAINT api_keys_one_credential CHECK ((secret_sha256 IS NULL) <> (certificate_sha256 IS NULL));
