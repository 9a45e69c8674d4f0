#!/usr/bin/env bash
# Supply-chain benchmark. Setup through the API: a manufacturer (company prefix 4012345, one plant)
# commissions PACKS packs (Benchmarks/py/supply_setup.py). Then, each at its own turn:
#   - capture: wrk -t2 -c8 POST /v1/epcis/capture, documents of 100 commissioning events (hashed,
#     custody-checked, stored, one ledger entry each, durable: default fsync, synchronous commit);
#   - verification: wrk -t2 -c32 GET /v1/supply/verify of random packs among the PACKS (how many
#     a second at most); then at each fixed rate of VERIFY_RATES (default 1000, 2500 and 5000/s, the
#     issue's figure) with `careledger-bench http-rate`, an open loop whose latencies count from
#     when each request was due, beside GET /health (the HTTP server alone) and GET /ready (one
#     database round trip) at the same rate, as the same-run floor;
#   - alert latency: a long-polling feed client and a capture of a shipment by a non-holder, TRIALS times;
#   - reference, same server and cluster: POST /v1/exchanges (Benchmarks/exchanges.sh's request).
# Results appended to Benchmarks/RESULTS.md.
#   Benchmarks/supply.sh [seconds=15] [packs=1000000] [trials=300]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-15}"
packs="${2:-1000000}"
trials="${3:-300}"
verify_rates="${VERIFY_RATES:-1000 2500 5000}"
swift build -c release --product careledger-bench >/dev/null
bench="$(swift build -c release --show-bin-path)/careledger-bench"
source Benchmarks/lib/server.sh
start_bench_server 8098
maker_org=$(deploy/admin/create-org.sh "Maker" manufacturer | jq -r .id)
maker=$(RATE_LIMIT=100000 deploy/admin/issue-key.sh "$maker_org" manufacturer | jq -r .apiKey)
other_org=$(deploy/admin/create-org.sh "Wholesaler" distributor | jq -r .id)
other=$(RATE_LIMIT=100000 deploy/admin/issue-key.sh "$other_org" distributor | jq -r .apiKey)
pharmacy_org=$(deploy/admin/create-org.sh "Pharmacy" pharmacy | jq -r .id)
pharmacy=$(RATE_LIMIT=100000 deploy/admin/issue-key.sh "$pharmacy_org" pharmacy | jq -r .apiKey)
deploy/admin/bind-company-prefix.sh "$maker_org" 4012345 >/dev/null
deploy/admin/bind-location.sh "$maker_org" 4012345000115 "Plant" >/dev/null
deploy/admin/bind-location.sh "$other_org" 4023333000000 "Warehouse" >/dev/null
plant="urn:epc:id:sgln:4012345.00011.0"
setup_seconds=$(python3 Benchmarks/py/supply_setup.py "$CARELEDGER_URL" "$maker" "$plant" "$packs")
# Let the bulk load settle (vacuum, statistics, a checkpoint) before measuring, as a deployment
# would be between its load and its traffic; otherwise autovacuum and the checkpoint of two million
# fresh rows share the two cores with the capture run.
psql "$DATABASE_URL" -q -c "VACUUM ANALYZE" -c "CHECKPOINT"

capture=$(KEY=$maker PLANT=$plant wrk -t2 -c8 -d${seconds}s --latency -s Benchmarks/lua/epcis_capture.lua $CARELEDGER_URL)
echo "$capture"
verify=$(KEY=$pharmacy PACKS=$packs wrk -t2 -c32 -d${seconds}s --latency -s Benchmarks/lua/verify.lua $CARELEDGER_URL)
echo "$verify"
json() { jq -r ".$2" <<<"$1"; }
rate_row() {
    echo "| $1 at a fixed $(json "$2" rate)/s (open loop, 64 connections) | $(json "$2" achieved)/s achieved, $(json "$2" requests) requests | $(json "$2" p50ms)ms | $(json "$2" p99ms)ms (p99.9 $(json "$2" p999ms), max $(json "$2" maxms)) | $(( $(json "$2" non2xx) + $(json "$2" errors) )) | |"
}
rate_rows=""
for rate in $verify_rates; do
    at_rate() { "$bench" http-rate 8098 "$rate" "$seconds" 64 "$1"; }
    verify_at_rate=$(RANGE=$packs KEY=$pharmacy at_rate "/v1/supply/verify?id=https%3A%2F%2Fid.gs1.org%2F01%2F04012345111118%2F21%2FS{n:7}")
    health_at_rate=$(at_rate /health)
    ready_at_rate=$(at_rate /ready)
    printf '%s\n' "$verify_at_rate" "$health_at_rate" "$ready_at_rate"
    rate_rows+="$(rate_row "GET /v1/supply/verify, random pack of $packs" "$verify_at_rate")"$'\n'
    rate_rows+="$(rate_row "reference: GET /health" "$health_at_rate")"$'\n'
    rate_rows+="$(rate_row "reference: GET /ready" "$ready_at_rate")"$'\n'
done
read -r alerts alert_p50 alert_p99 alert_max < <(python3 Benchmarks/py/supply_alert_latency.py "$CARELEDGER_URL" "$maker" "$other" \
    "urn:epc:id:sgln:4023333.00000.0" "$trials")
echo "alerts: $alerts p50 $alert_p50 ms p99 $alert_p99 ms max $alert_max ms"

# The reference: the exchange send, as Benchmarks/exchanges.sh makes it.
hospital_a=$(deploy/admin/create-org.sh "Hospital A" hospital | jq -r .id)
hospital_b=$(deploy/admin/create-org.sh "Hospital B" hospital | jq -r .id)
key=$(RATE_LIMIT=100000 deploy/admin/issue-key.sh "$hospital_a" hospital | jq -r .apiKey)
patient=$(curl -s -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d '{"resourceType":"Patient","identifier":[{"system":"urn:bench","value":"1"}]}' $CARELEDGER_URL/v1/patients | jq -r .id)
curl -s -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d "{\"grantee\":{\"orgId\":\"$hospital_b\"},\"purposes\":[\"TREAT\"],\"categories\":[\"lab\"],\"evidenceHash\":\"sha256:$(printf 'a%.0s' $(seq 64))\"}" \
    $CARELEDGER_URL/v1/patients/$patient/consents
exchange=$(KEY=$key TO=$hospital_b PATIENT=$patient wrk -t2 -c32 -d${seconds}s --latency -s Benchmarks/lua/exchange.lua $CARELEDGER_URL)
echo "$exchange"
peak_rss=$(awk '/VmHWM/ {printf "%.0f MB", $2 / 1024}' /proc/$server/status)
items=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM supply_items")
events=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM epcis_events")
field() { awk -v k="$2" '$1 == k {print $2}' <<<"$1"; }
rps() { awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$1"; }
non2xx() { awk '/Non-2xx/ {print $5}' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$(rps "$exchange")" 'BEGIN {printf "%.2f", a / b}'; }
captured=$(( $(rps "$capture") * 100 ))
{
    echo
    echo "## Supply chain, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Machine: $(nproc) cores; server and PostgreSQL (default durability) on it together. Command: \`Benchmarks/supply.sh $seconds $packs $trials\` (git ${BENCH_REVISION:-$(git rev-parse --short HEAD)}). $packs packs commissioned through the API first (${setup_seconds} s, documents of 10 events of 1,000 packs)."
    echo
    echo "| measure | figure | p50 | p99 | non-2xx | ratio to the exchange send (req/s) |"
    echo "|---|---|---|---|---|---|"
    echo "| capture, documents of 100 events (wrk -c8) | $captured events/s ($(rps "$capture") documents/s) | $(field "$capture" 50%) | $(field "$capture" 99%) | $(non2xx "$capture") | $(ratio "$(rps "$capture")") |"
    echo "| GET /v1/supply/verify, random pack of $packs (wrk -c32) | $(rps "$verify") req/s | $(field "$verify" 50%) | $(field "$verify" 99%) | $(non2xx "$verify") | $(ratio "$(rps "$verify")") |"
    printf '%s' "$rate_rows"
    echo "| alert on a long-polled feed after the offending capture's 202 ($alerts trials) | max ${alert_max} ms | ${alert_p50}ms | ${alert_p99}ms | | |"
    echo "| reference: POST /v1/exchanges (4 KB Bundle, wrk -c32) | $(rps "$exchange") req/s | $(field "$exchange" 50%) | $(field "$exchange" 99%) | $(non2xx "$exchange") | 1.00 |"
    echo
    echo "$items items and $events events stored at the end. Server peak RSS: $peak_rss."
} >> Benchmarks/RESULTS.md
