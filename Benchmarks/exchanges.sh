#!/usr/bin/env bash
# Exchange benchmark: POST /v1/exchanges with a ~4 KB FHIR Bundle at 32 connections (authenticated,
# consent-checked, hashed, sealed, stored and anchored, durable: default fsync and synchronous
# commit), then GET /v1/exchanges/{id}. Throwaway cluster; results appended to Benchmarks/RESULTS.md.
#   Benchmarks/exchanges.sh [seconds=15]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-15}"
source Benchmarks/lib/server.sh
start_bench_server 8095
org_a=$(deploy/admin/create-org.sh "Sender" hospital | jq -r .id)
org_b=$(deploy/admin/create-org.sh "Recipient" hospital | jq -r .id)
key_a=$(RATE_LIMIT=100000 deploy/admin/issue-key.sh "$org_a" hospital | jq -r .apiKey)
key_b=$(RATE_LIMIT=100000 deploy/admin/issue-key.sh "$org_b" hospital | jq -r .apiKey)
patient=$(curl -s -H "Authorization: Bearer $key_a" -H 'Content-Type: application/json' \
    -d '{"resourceType":"Patient","identifier":[{"system":"urn:bench","value":"1"}]}' $CARELEDGER_URL/v1/patients | jq -r .id)
curl -s -o /dev/null -H "Authorization: Bearer $key_a" -H 'Content-Type: application/json' \
    -d "{\"grantee\":{\"orgId\":\"$org_b\"},\"purposes\":[\"TREAT\"],\"categories\":[\"*\"],\"evidenceHash\":\"sha256:$(printf 'a%.0s' $(seq 64))\"}" \
    $CARELEDGER_URL/v1/patients/$patient/consents

post=$(KEY=$key_a TO=$org_b PATIENT=$patient wrk -t2 -c32 -d${seconds}s --latency -s Benchmarks/lua/exchange.lua $CARELEDGER_URL)
echo "$post"
count=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM exchanges")
exchange=$(psql "$DATABASE_URL" -Atc "SELECT id FROM exchanges ORDER BY id LIMIT 1")
get=$(MODE=get KEY=$key_b EXCHANGE=$exchange wrk -t2 -c32 -d${seconds}s --latency -s Benchmarks/lua/exchange.lua $CARELEDGER_URL)
echo "$get"
field() { awk -v k="$2" '$1 == k {print $2}' <<<"$1"; }
rps() { awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$1"; }
non2xx() { awk '/Non-2xx/ {print $5}' <<<"$1"; }
{
    echo
    echo "## Exchanges, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Machine: $(nproc) cores; server and PostgreSQL (default durability) on it together. Command: \`${SERVE_FLAGS:+SERVE_FLAGS=\"$SERVE_FLAGS\" }Benchmarks/exchanges.sh $seconds\` (git ${BENCH_REVISION:-$(git rev-parse --short HEAD)}); wrk -t2 -c32."
    echo
    echo "| request | req/s | p50 | p99 | non-2xx |"
    echo "|---|---|---|---|---|"
    echo "| POST /v1/exchanges (4 KB Bundle) | $(rps "$post") | $(field "$post" 50%) | $(field "$post" 99%) | $(non2xx "$post") |"
    echo "| GET /v1/exchanges/{id} | $(rps "$get") | $(field "$get" 50%) | $(field "$get" 99%) | $(non2xx "$get") |"
    echo
    echo "$count exchanges stored and anchored by the POST run."
} >> Benchmarks/RESULTS.md
