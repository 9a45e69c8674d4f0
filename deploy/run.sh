#!/usr/bin/env bash
# Installs what is missing, builds CareLedger in release mode, and runs the server in the foreground.
# Without DATABASE_URL it creates (first run) and starts a private PostgreSQL cluster under
# .data/postgres, reachable only through a unix socket there; later runs reuse it. Ctrl-C stops the
# server and leaves the data. Extra arguments go to `careledger serve` (e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib/common.sh

ensure_system_packages
ensure_swift

if [ -z "${DATABASE_URL:-}" ]; then
    mkdir -p .data
    log "starting the local PostgreSQL cluster in .data/postgres"
    DATABASE_URL="$(deploy/lib/pg-cluster.sh start .data/postgres careledger)"
fi
export DATABASE_URL
export CARELEDGER_MIGRATIONS_DIR="${CARELEDGER_MIGRATIONS_DIR:-$PWD/Migrations}"

log "building (release)"
swift build -c release --product careledger
.build/release/careledger migrate >&2

# The key that signs tree heads: made once, kept with the local data, readable by its owner only.
if [ -z "${CARELEDGER_SIGNING_KEY_FILE:-}" ]; then
    export CARELEDGER_SIGNING_KEY_FILE="$PWD/.data/signing-key.pem"
    if [ ! -f "$CARELEDGER_SIGNING_KEY_FILE" ]; then
        mkdir -p .data
        log "creating the ledger signing key in .data/signing-key.pem"
        .build/release/careledger keygen --out "$CARELEDGER_SIGNING_KEY_FILE" >&2
    fi
fi

# The master key that wraps every patient's data key: made once, kept with the local data.
if [ -z "${CARELEDGER_MASTER_KEY_FILE:-}" ]; then
    export CARELEDGER_MASTER_KEY_FILE="$PWD/.data/master-key"
    if [ ! -f "$CARELEDGER_MASTER_KEY_FILE" ]; then
        log "creating the master key for patient data in .data/master-key"
        .build/release/careledger keygen --master --out "$CARELEDGER_MASTER_KEY_FILE" >/dev/null
    fi
fi

# Where the server will listen, for the messages: --host/--port given to serve win over the environment.
host="${CARELEDGER_HOST:-127.0.0.1}" port="${CARELEDGER_PORT:-8080}" previous=""
for argument in "$@"; do
    case "$previous" in
        --host) host="$argument" ;;
        --port) port="$argument" ;;
    esac
    previous="$argument"
done

# First start: the platform organization and its first admin key, shown this once.
status=0
bootstrap="$(.build/release/careledger admin bootstrap 2>/dev/null)" || status=$?
if [ "$status" -eq 0 ]; then
    api_key="$(jq -r .apiKey <<<"$bootstrap")"
    cat >&2 <<MESSAGE
==> first start: created the platform organization and its first admin key.
    Keep this key; it is shown only now (only its SHA-256 is stored):

    $bootstrap

    Try it:
      curl -H "Authorization: Bearer $api_key" http://$host:$port/v1/me
    or with the admin scripts:
      export CARELEDGER_API_KEY=$api_key CARELEDGER_URL=http://$host:$port
      deploy/admin/whoami.sh
MESSAGE
elif [ "$status" -ne 3 ]; then
    .build/release/careledger admin bootstrap  # again, to show why it failed
    exit 1
fi

log "serving on $host:$port"
exec .build/release/careledger serve --no-migrate "$@"
