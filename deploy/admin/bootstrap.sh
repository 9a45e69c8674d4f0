#!/usr/bin/env bash
# Creates the platform organization and its first admin key, and prints {"orgId","keyId","apiKey"}
# once. Runs `careledger admin bootstrap` against DATABASE_URL, or without it against the local
# cluster that deploy/run.sh keeps in .data/postgres. Exit status 3: an admin key exists already.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${DATABASE_URL:-}" ]; then
    [ -d .data/postgres ] || { echo "DATABASE_URL is not set and there is no local cluster; run ./deploy/run.sh first" >&2; exit 64; }
    DATABASE_URL="$(deploy/lib/pg-cluster.sh start .data/postgres careledger)"
fi
export DATABASE_URL
binary="${CARELEDGER_BIN:-.build/release/careledger}"
[ -x "$binary" ] || swift build -c release --product careledger >&2
exec "$binary" admin bootstrap
