# Sourced by the benchmarks and the fault tests: a throwaway database ready for `careledger serve`.
#   prepare_ledger_database BIN WORK [fast]
# Starts a cluster in WORK/pg (default durability unless "fast"), makes the signing and master keys
# in WORK, migrates and bootstraps. Exports DATABASE_URL, CARELEDGER_MIGRATIONS_DIR and the key
# files' variables; sets admin_key to the platform admin's key.
prepare_ledger_database() {
    local bin="$1" work="$2"
    DATABASE_URL="$(deploy/lib/pg-cluster.sh start "$work/pg" careledger ${3:-})"
    export DATABASE_URL CARELEDGER_MIGRATIONS_DIR="$PWD/Migrations"
    export CARELEDGER_SIGNING_KEY_FILE="$work/signing.pem" CARELEDGER_MASTER_KEY_FILE="$work/master.key"
    "$bin" keygen --out "$CARELEDGER_SIGNING_KEY_FILE" >/dev/null
    "$bin" keygen --master --out "$CARELEDGER_MASTER_KEY_FILE" >/dev/null
    "$bin" migrate >/dev/null
    admin_key=$("$bin" admin bootstrap | python3 -c 'import json, sys; print(json.load(sys.stdin)["apiKey"])')
}
