#!/usr/bin/env bash
# PostgreSQL layer benchmark: `careledger-bench` through our pool beside pgbench doing the same work on
# the same cluster in the same run. Default durability (fsync, synchronous_commit on).
#   Benchmarks/db.sh [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
out=Benchmarks/out
mkdir -p "$out"
swift build -c release --product careledger-bench >/dev/null
bench=.build/release/careledger-bench
pgbench=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/pgbench

cluster="$(mktemp -d "${TMPDIR:-/tmp}/careledger-bench.XXXXXX")"
[ "$(id -u)" -eq 0 ] && chmod 755 "$cluster"
trap 'deploy/lib/pg-cluster.sh stop "$cluster/pg" >/dev/null 2>&1; rm -rf "$cluster"' EXIT
DATABASE_URL="$(deploy/lib/pg-cluster.sh start "$cluster/pg" careledger)"
export DATABASE_URL
socket="$cluster/pg/socket"
user="$(if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi)"
psql_run() { psql -h "$socket" -U "$user" -d careledger -qAt -c "$1"; }
psql_run "CREATE TABLE bench_jsonb (id bigserial PRIMARY KEY, doc jsonb NOT NULL)"

echo 'SELECT 1;' > "$out/select1.sql"
# The document is a bind parameter on both sides (pgbench turns :doc into $1 with -M prepared), so the
# server parses the 2 KB of JSON on every insert for both.
doc="{\"resourceType\":\"Observation\",\"note\":\"$(printf 'x%.0s' $(seq 2000))\"}"
echo 'INSERT INTO bench_jsonb (doc) VALUES (:doc::jsonb);' > "$out/insert-jsonb.sql"

pgbench_tps() {
    local script="$1" clients="$2" threads
    threads=$(( clients < 2 ? 1 : 2 ))
    "$pgbench" -h "$socket" -U "$user" -n -M prepared -c "$clients" -j "$threads" -T "$seconds" -D "doc=$doc" -f "$script" careledger 2>/dev/null \
        | awk '/^tps = / {printf "%.0f", $3}'
}

rows=()
# The last run is the pool without its pipelined read connections: each statement on a connection of
# its own, as each pgbench client has one.
for run in "select1 1" "select1 16" "insert-jsonb 1" "insert-jsonb 16" "select1 16 --no-multiplexing"; do
    read -r scenario clients mode <<< "$run"
    label="$scenario${mode:+ ($mode)}"
    ours=$("$bench" postgres "$scenario" "$clients" "$seconds" $mode)
    ours_tps=$(python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])["tps"]))' "$ours")
    ours_p99=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["p99ms"])' "$ours")
    theirs=$(pgbench_tps "$out/$scenario.sql" "$clients")
    ratio=$(python3 -c "print(f'{$ours_tps / $theirs:.0%}')")
    echo "$label x$clients: careledger $ours_tps tps (p99 $ours_p99 ms), pgbench $theirs tps, ratio $ratio"
    rows+=("| $label | $clients | $ours_tps | $ours_p99 | $theirs | $ratio |")
done

{
    echo
    echo "## PostgreSQL layer, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Machine: $(nproc) cores; local cluster over a unix socket, default durability; ${seconds}s per run."
    echo "Command: \`Benchmarks/db.sh $seconds\` (git $(git rev-parse --short HEAD)). pgbench: \`-M prepared -n -c N -j min(N,2)\`, the jsonb document bound as a parameter on both sides."
    echo
    echo "| scenario | concurrency | careledger tps | careledger p99 ms | pgbench tps | ratio |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
} >> Benchmarks/RESULTS.md
