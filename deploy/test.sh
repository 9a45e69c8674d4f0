#!/usr/bin/env bash
# Installs what is missing, starts throwaway PostgreSQL clusters, builds and runs the whole test suite,
# and removes the clusters on exit, also when tests fail.
# With DATABASE_URL set, that database is used instead of the main throwaway cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib/common.sh

ensure_system_packages
ensure_swift
ensure_python_tools

work="$(mktemp -d "${TMPDIR:-/tmp}/careledger-test.XXXXXX")"
cleanup() {
    deploy/lib/pg-cluster.sh stop "$work/main" >/dev/null 2>&1 || true
    deploy/lib/pg-cluster.sh stop "$work/restart" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
[ "$(id -u)" -eq 0 ] && chmod 755 "$work"

if [ -z "${DATABASE_URL:-}" ]; then
    log "starting a throwaway PostgreSQL cluster"
    DATABASE_URL="$(deploy/lib/pg-cluster.sh start "$work/main" careledger fast)"
fi
export DATABASE_URL
# A second cluster that the fault-tolerance tests stop and start on purpose.
export CARELEDGER_TEST_RESTART_DIR="$work/restart"
CARELEDGER_TEST_RESTART_URL="$(deploy/lib/pg-cluster.sh start "$work/restart" careledger fast)"
export CARELEDGER_TEST_RESTART_URL

log "building"
timeout 45m swift build --build-tests
log "running tests"
# A hung test fails the run within minutes, naming itself, instead of running into CI's limit.
deploy/lib/test-watchdog.py --idle "${CARELEDGER_TEST_IDLE_SECONDS:-300}" --limit "${CARELEDGER_TEST_LIMIT_SECONDS:-2400}" -- \
    swift test --skip-build
# Real faults against real processes and clusters (Tests/Faults): crashes under load accounted for
# (directly and through PgBouncer),
# a rollback caught, a hot standby serving only what tolerates lag, limits shared by two instances.
for form in short pgbouncer rollback replica limits; do
    log "faults: $form"
    BIN=.build/debug/careledger timeout 10m Tests/Faults/run.sh "$form"
done
log "fuzzing the request decoder and the router briefly"
Tests/Fuzz/run.sh "${CARELEDGER_FUZZ_SECONDS:-15}"
