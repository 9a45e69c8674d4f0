#!/usr/bin/env bash
# Claims feed benchmark: 4 hospitals submit the FHIR Claim example at a fixed rate (default 500/s)
# to 10 insurers, each long-polling its feed; measures, per claim, the time from the submit's 201 to
# its insurer receiving it (target p99 < 100 ms). Throwaway cluster, default durability; results
# appended to Benchmarks/RESULTS.md.
#   Benchmarks/claims.sh [seconds=20] [rate=500]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
rate="${2:-500}"
source Benchmarks/lib/server.sh
start_bench_server 8096
evidence="sha256:$(printf 'e%.0s' $(seq 64))"
hospitals=()
for h in 1 2 3 4; do
    org=$(deploy/admin/create-org.sh "Hospital $h" hospital | jq -r .id)
    key=$(RATE_LIMIT=100000 deploy/admin/issue-key.sh "$org" hospital | jq -r .apiKey)
    patient=$(curl -s -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
        -d "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:bench\",\"value\":\"$h\"}]}" $CARELEDGER_URL/v1/patients | jq -r .id)
    curl -sf -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
        -d "{\"grantee\":{\"orgKind\":\"insurer\"},\"purposes\":[\"HPAYMT\"],\"categories\":[\"claim\"],\"evidenceHash\":\"$evidence\"}" \
        $CARELEDGER_URL/v1/patients/$patient/consents
    hospitals+=("{\"key\":\"$key\",\"patient\":\"$patient\"}")
done
insurers=()
for i in $(seq 1 10); do
    org=$(deploy/admin/create-org.sh "Insurer $i" insurer | jq -r .id)
    key=$(RATE_LIMIT=100000 deploy/admin/issue-key.sh "$org" insurer | jq -r .apiKey)
    insurers+=("{\"key\":\"$key\",\"org\":\"$org\"}")
done
join() { local IFS=,; echo "$*"; }
echo "{\"hospitals\":[$(join "${hospitals[@]}")],\"insurers\":[$(join "${insurers[@]}")]}" > "$work/setup.json"
jq -c . ../shared/fixtures/fhir/claim-example.json > "$work/claim.json"

# CPU seconds (user + system) spent so far by the server and by all PostgreSQL processes.
cpu() { awk '{t += $14 + $15} END {printf "%.1f", t / '"$(getconf CLK_TCK)"'}' $(for p in "$@"; do echo /proc/$p/stat; done) 2>/dev/null; }
postgres_pids() { pgrep -u postgres postgres | tr '\n' ' '; }
server_before=$(cpu "$server"); postgres_before=$(cpu $(postgres_pids))
result=$(python3 Benchmarks/py/claims_feed.py "$CARELEDGER_URL" "$seconds" "$rate" "$work/setup.json" "$work/claim.json")
server_cpu=$(awk -v a="$(cpu "$server")" -v b="$server_before" 'BEGIN {printf "%.1f", a - b}')
postgres_cpu=$(awk -v a="$(cpu $(postgres_pids))" -v b="$postgres_before" 'BEGIN {printf "%.1f", a - b}')
echo "$result"
echo "CPU seconds during the run: server $server_cpu, PostgreSQL $postgres_cpu"
get() { jq -r ".$1" <<<"$result"; }
{
    echo
    echo "## Claims feed, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Machine: $(nproc) cores; server, PostgreSQL (default durability) and the Python client on it together. Command: \`${SERVE_FLAGS:+SERVE_FLAGS=\"$SERVE_FLAGS\" }Benchmarks/claims.sh $seconds $rate\` (git ${BENCH_REVISION:-$(git rev-parse --short HEAD)}); 4 hospitals submit the FHIR Claim example to 10 insurers long-polling their feeds (limit 200, wait 5)."
    echo
    echo "| claims | achieved rate | submit p50 | submit p99 | 201 -> insurer p50 | p99 | max | undelivered | failures |"
    echo "|---|---|---|---|---|---|---|---|---|"
    echo "| $(get submitted) | $(get rate)/s | $(get submitP50ms) ms | $(get submitP99ms) ms | $(get deliveryP50ms) ms | $(get deliveryP99ms) ms | $(get deliveryMaxMs) ms | $(get undelivered) | $(get failures) |"
    echo
    echo "CPU seconds during the ${seconds} s run: server $server_cpu, PostgreSQL $postgres_cpu (of $((seconds * $(nproc))) available; the client used the rest)."
} >> Benchmarks/RESULTS.md
