#!/usr/bin/env bash
# Fault injection under load: many clients write through a round-robin in front of two server
# instances while instances are killed, PostgreSQL crashes and its connections are cut; afterwards
# every operation is accounted for (Tests/Faults/faults.py says what is checked). Exits non-zero on
# any violation.
#   Tests/Faults/run.sh [short|long|pgbouncer|rollback|replica|limits] [extra flags]
# short (CI): ~2 minutes, a dozen faults. long (by hand, for RESULTS.md): 20 minutes, hundreds of faults.
# pgbouncer (CI): the short form with both instances behind PgBouncer in transaction mode.
# rollback (CI): the database restored from a base backup older than a published checkpoint is
# caught by `careledger verify --database` and by a monitor (Tests/Faults/rollback.py).
# replica (CI): a hot standby made with pg_basebackup -R serves the reads that tolerate lag, and
# only those (Tests/Faults/replica.py).
# limits (CI): two instances share a key's rate, an address's failure budget and its connections.
# replica-load (a benchmark, Benchmarks/replica.sh): what a hot standby takes off the primary.
# soak (by hand, Benchmarks/soak.sh): an hour of mixed writes at 70% of their peak, no faults.
# BIN: a careledger binary to use (default: build the release one; CI passes its debug build).
set -euo pipefail
cd "$(dirname "$0")/../.."
form="${1:-short}"
shift || true
case "$form" in
short) flags=(--seconds 75 --clients 12 --fault-every 4 6) ;;
long) flags=(--seconds 1200 --clients 24 --fault-every 2 5) ;;
pgbouncer) flags=(--seconds 60 --clients 12 --fault-every 4 6 --pgbouncer) ;;
rollback | replica | limits | replica-load | soak) flags=() ;;
*) echo "usage: Tests/Faults/run.sh [short|long|pgbouncer|rollback|replica|limits] [extra flags]" >&2; exit 64 ;;
esac

if [ -z "${BIN:-}" ]; then
    swift build -c release --product careledger >/dev/null
    BIN=.build/release/careledger
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/careledger-faults.XXXXXX")"
[ "$(id -u)" -eq 0 ] && chmod 755 "$work"
cleanup() {
    deploy/lib/pg-cluster.sh stop "$work/standby" >/dev/null 2>&1 || true
    deploy/lib/pg-cluster.sh stop "$work/pg" >/dev/null 2>&1 || true
    [ -n "${KEEP_FAULTS_WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Default durability (fsync, synchronous commit): a crash must not lose what was acknowledged.
. deploy/lib/ledger-database.sh
prepare_ledger_database "$BIN" "$work"

script=Tests/Faults/faults.py
case "$form" in
rollback | replica | limits) script="Tests/Faults/$form.py" ;;
replica-load) script=Benchmarks/replica.py ;;
soak) script=Benchmarks/soak.py ;;
esac
python3 "$script" --bin "$BIN" --cluster "$work/pg" --work "$work" --admin-key "$admin_key" ${flags[@]+"${flags[@]}"} "$@"
