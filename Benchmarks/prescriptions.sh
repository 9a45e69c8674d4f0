#!/usr/bin/env bash
# Prescribing benchmark: patients each with 20 active prescriptions from 3 hospitals and 3 allergies
# (made through the API); then POST /v1/prescriptions at 32 connections (checked against all 23
# records, sealed, stored and anchored, durable: default fsync and synchronous commit) and
# POST /v1/prescriptions/check (the same checks, nothing stored but the audit event), round robin
# over the patients. As the reference measured in the same run, on the same server and cluster:
# POST /v1/exchanges (Benchmarks/exchanges.sh's request). Results appended to Benchmarks/RESULTS.md.
#   Benchmarks/prescriptions.sh [seconds=15] [patients=400]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-15}"
patients="${2:-400}"
source Benchmarks/lib/server.sh
start_bench_server 8097
hospitals=()
for h in 1 2 3; do
    org=$(deploy/admin/create-org.sh "Hospital $h" hospital | jq -r .id)
    key=$(RATE_LIMIT=100000 deploy/admin/issue-key.sh "$org" hospital | jq -r .apiKey)
    hospitals+=("{\"key\":\"$key\",\"org\":\"$org\"}")
done
join() { local IFS=,; echo "$*"; }
echo "{\"hospitals\":[$(join "${hospitals[@]}")]}" > "$work/setup.json"
key=$(jq -r '.hospitals[0].key' "$work/setup.json")
started=$(date +%s)
python3 Benchmarks/py/prescriptions_setup.py "$CARELEDGER_URL" "$work/setup.json" "$patients" "$work/patients.txt"
setup_seconds=$(( $(date +%s) - started ))

run() { MODE=$1 KEY=$key PATIENTS="$work/patients.txt" wrk -t2 -c32 -d${seconds}s --latency -s Benchmarks/lua/prescription.lua $CARELEDGER_URL; }
check=$(run check)
echo "$check"
post=$(run post)
echo "$post"
count=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM prescriptions")
# The reference, same server and cluster: the exchange send.
org_b=$(jq -r '.hospitals[1].org' "$work/setup.json")
patient=$(head -n 1 "$work/patients.txt")
curl -s -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d "{\"grantee\":{\"orgId\":\"$org_b\"},\"purposes\":[\"TREAT\"],\"categories\":[\"lab\"],\"evidenceHash\":\"sha256:$(printf 'a%.0s' $(seq 64))\"}" \
    $CARELEDGER_URL/v1/patients/$patient/consents
exchange=$(KEY=$key TO=$org_b PATIENT=$patient wrk -t2 -c32 -d${seconds}s --latency -s Benchmarks/lua/exchange.lua $CARELEDGER_URL)
echo "$exchange"
peak_rss=$(awk '/VmHWM/ {printf "%.0f MB", $2 / 1024}' /proc/$server/status)
field() { awk -v k="$2" '$1 == k {print $2}' <<<"$1"; }
rps() { awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$1"; }
non2xx() { awk '/Non-2xx/ {print $5}' <<<"$1"; }
ratio() { awk -v a="$(rps "$1")" -v b="$(rps "$exchange")" 'BEGIN {printf "%.2f", a / b}'; }
{
    echo
    echo "## Prescriptions, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Machine: $(nproc) cores; server and PostgreSQL (default durability) on it together. Command: \`${SERVE_FLAGS:+SERVE_FLAGS=\"$SERVE_FLAGS\" }Benchmarks/prescriptions.sh $seconds $patients\` (git ${BENCH_REVISION:-$(git rev-parse --short HEAD)}); wrk -t2 -c32. $patients patients, each with 3 allergies and 20 active prescriptions from 3 hospitals (setup through the API: ${setup_seconds} s)."
    echo
    echo "| request | req/s | p50 | p99 | non-2xx | ratio to the exchange send |"
    echo "|---|---|---|---|---|---|"
    echo "| POST /v1/prescriptions/check (a high finding, redacted) | $(rps "$check") | $(field "$check" 50%) | $(field "$check" 99%) | $(non2xx "$check") | $(ratio "$check") |"
    echo "| POST /v1/prescriptions (no finding; durable, anchored) | $(rps "$post") | $(field "$post" 50%) | $(field "$post" 99%) | $(non2xx "$post") | $(ratio "$post") |"
    echo "| reference: POST /v1/exchanges (4 KB Bundle) | $(rps "$exchange") | $(field "$exchange" 50%) | $(field "$exchange" 99%) | $(non2xx "$exchange") | 1.00 |"
    echo
    echo "$count prescriptions stored and anchored (setup and POST run). Server peak RSS: $peak_rss."
} >> Benchmarks/RESULTS.md
