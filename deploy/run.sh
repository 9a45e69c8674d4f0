#!/usr/bin/env bash
# Installs what is missing, builds CareLedger in release mode, and runs the server in the foreground.
# Extra arguments go to `careledger serve` (e.g. --port 9000). Ctrl-C stops it gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib/common.sh

ensure_system_packages
ensure_swift
log "building (release)"
swift build -c release --product careledger
log "serving on ${CARELEDGER_HOST:-127.0.0.1}:${CARELEDGER_PORT:-8080}"
exec .build/release/careledger serve "$@"
