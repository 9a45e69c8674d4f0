#!/usr/bin/env bash
# Ledger benchmarks on a throwaway cluster with default durability (fsync, synchronous_commit on):
#   1. sequencing: 32 writers each committing queue rows, paced at 20,000 entries/s (lag), then flat out
#   2. a log of ~1,000,000 entries, then inclusion/consistency proof latency through HTTP (wrk)
#   3. careledger verify --database over it, beside `openssl speed -evp sha256`
#   Benchmarks/ledger.sh [entries=1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
entries="${1:-1000000}"
swift build -c release --product careledger-bench >/dev/null
swift build -c release --product careledger >/dev/null
bin=.build/release
cluster="$(mktemp -d "${TMPDIR:-/tmp}/careledger-ledger-bench.XXXXXX")"
[ "$(id -u)" -eq 0 ] && chmod 755 "$cluster"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; deploy/lib/pg-cluster.sh stop "$cluster/pg" >/dev/null 2>&1; rm -rf "$cluster"' EXIT
DATABASE_URL="$(deploy/lib/pg-cluster.sh start "$cluster/pg" careledger)"
export DATABASE_URL CARELEDGER_MIGRATIONS_DIR="$PWD/Migrations" CARELEDGER_SIGNING_KEY_FILE="$cluster/signing-key.pem"
"$bin/careledger" keygen --out "$CARELEDGER_SIGNING_KEY_FILE" --log-origin bench.careledger/log >/dev/null
export CARELEDGER_MASTER_KEY_FILE="$cluster/master.key"
"$bin/careledger" keygen --master --out "$CARELEDGER_MASTER_KEY_FILE" >/dev/null
"$bin/careledger" migrate >/dev/null

paced=$("$bin/careledger-bench" ledger 32 10 20000)
flat=$("$bin/careledger-bench" ledger 32 10)
echo "sequencing paced at 20k/s: $paced"
echo "sequencing flat out:       $flat"
have=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM ledger_entries")
[ "$have" -lt "$entries" ] && "$bin/careledger-bench" ledger-fill $((entries - have)) >/dev/null
size=$(psql "$DATABASE_URL" -Atc "SELECT max(tree_size) FROM ledger_heads")
# Steady state: statistics for the freshly loaded tables, as autovacuum would reach soon anyway
# and a checkpoint (without them the first minutes of proof requests race autoanalyze and the
# checkpointer flushing the load, and show 50-500 ms tails).
psql "$DATABASE_URL" -qc "VACUUM ANALYZE" -c "CHECKPOINT"

"$bin/careledger" serve --port 8097 --ledger-public --no-migrate --log-origin bench.careledger/log >/dev/null 2>&1 &
server=$!
sleep 2
proofs=()
for connections in 1 4 16; do
    for proof in inclusion consistency; do
        out=$(SIZE=$size PROOF=$proof wrk -t$(( connections < 2 ? 1 : 2 )) -c$connections -d8s --latency -s Benchmarks/lua/proofs.lua http://127.0.0.1:8097)
        rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
        p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
        p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
        echo "$proof proofs, $connections connections: $rps req/s, p50 $p50, p99 $p99"
        proofs+=("| $proof | $connections | $rps | $p50 | $p99 |")
    done
done
kill "$server"; server=""

start=$(date +%s.%N)
verify=$("$bin/careledger" verify --database 2>/dev/null || true)
elapsed=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$start" "$(date +%s.%N)")
rate=$(python3 -c "import sys; print(round(int(sys.argv[1]) / float(sys.argv[2])))" "$size" "$elapsed")
sha=$(openssl speed -evp sha256 -seconds 3 2>/dev/null | awk '/^sha256/ {print $2, $3, $4}')
echo "verify --database: $size entries in ${elapsed}s = $rate entries/s ($verify)"
echo "openssl speed -evp sha256 (16, 64, 256 bytes): $sha"

{
    echo
    echo "## Ledger, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Machine: $(nproc) cores; local cluster over a unix socket, default durability. Command: \`Benchmarks/ledger.sh $entries\` (git $(git rev-parse --short HEAD))."
    echo
    echo "- Sequencing, 32 writers each committing one queue row per transaction, paced at 20,000 entries/s: \`$paced\`"
    echo "- Sequencing, the same writers flat out: \`$flat\` (entriesPerSecond counts until the queue is drained)"
    echo "- Lag = from the row's insert to the start of the batch that sequenced it (the batch commits a few ms later)."
    echo
    echo "Proofs through HTTP at $size entries (\`--ledger-public\`, random positions, wrk 8 s):"
    echo
    echo "| proof | connections | req/s | p50 | p99 |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "${proofs[@]}"
    echo
    echo "- \`careledger verify --database\`: $size entries in ${elapsed} s = $rate entries/s."
    echo "- \`openssl speed -evp sha256\` on the same machine (16 / 64 / 256-byte blocks): $sha."
} >> Benchmarks/RESULTS.md
