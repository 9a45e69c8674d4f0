#!/usr/bin/env bash
# Devices and IoMT benchmark. Setup through the API (Benchmarks/py/devices_setup.py): one hospital,
# 20 locations of 5 RFID readers, DEVICES tagged devices of 100 device identifiers, every 5th
# available, the first 4,000 in use for 100 patients with an Ed25519 key each. Then, each at its turn:
#   - RFID: wrk -t2 -c8 POST /v1/devices/rfid-reads, batches of 500 reads from the 100 readers in
#     turn: 100 tags read 5 times each (a reader's repeats), then 500 tags read once (no repeats);
#     durable (default fsync, synchronous commit), one ledger entry per batch;
#   - telemetry: readings signed beforehand (Benchmarks/py/devices_telemetry.py: JWS EdDSA, 100 per
#     request, from 100 different devices), wrk -t2 -c8 POST /v1/telemetry: verified, sealed under
#     the patient's key, stored, one Merkle-batch ledger entry per request;
#   - inventory: wrk -t2 -c8, then -c2, GET /v1/devices (di and status, location or type), the
#     availability answer and the not-seen report, over the DEVICES devices;
#   - reference, same server and cluster: POST /v1/exchanges (Benchmarks/exchanges.sh's request).
# Results appended to Benchmarks/RESULTS.md.
#   Benchmarks/devices.sh [seconds=15] [devices=100000]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-15}"
devices="${2:-100000}"
monitors=4000
source Benchmarks/lib/server.sh
start_bench_server 8097
hospital_org=$(deploy/admin/create-org.sh "Hospital" hospital | jq -r .id)
hospital=$(RATE_LIMIT=100000 deploy/admin/issue-key.sh "$hospital_org" hospital | jq -r .apiKey)
setup_seconds=$(python3 Benchmarks/py/devices_setup.py "$CARELEDGER_URL" "$hospital" "$devices" "$monitors" 100 "$work/state.json")
psql "$DATABASE_URL" -q -c "VACUUM ANALYZE" -c "CHECKPOINT"

rfid_repeats=$(KEY=$hospital READERS=100 DEVICES=$devices TAGS=100 wrk -t2 -c8 -d${seconds}s --latency -s Benchmarks/lua/rfid_reads.lua $CARELEDGER_URL)
echo "$rfid_repeats"
rfid_distinct=$(KEY=$hospital READERS=100 DEVICES=$devices TAGS=500 wrk -t2 -c8 -d${seconds}s --latency -s Benchmarks/lua/rfid_reads.lua $CARELEDGER_URL)
echo "$rfid_distinct"

# Enough signed bodies for 20,000 readings a second; signed just before, inside the 5-minute skew.
bodies=$(( seconds * 200 ))
sign_seconds=$(python3 Benchmarks/py/devices_telemetry.py "$work/state.json" "$bodies" 100 "$work/telemetry.jsonl")
telemetry=$(KEY=$hospital BODIES="$work/telemetry.jsonl" wrk -t2 -c8 -d${seconds}s --latency -s Benchmarks/lua/telemetry.lua $CARELEDGER_URL)
echo "$telemetry"

psql "$DATABASE_URL" -q -c "ANALYZE devices"
list=$(KEY=$hospital QUERY=list wrk -t2 -c8 -d${seconds}s --latency -s Benchmarks/lua/inventory.lua $CARELEDGER_URL)
echo "$list"
availability=$(KEY=$hospital QUERY=availability wrk -t2 -c8 -d${seconds}s --latency -s Benchmarks/lua/inventory.lua $CARELEDGER_URL)
echo "$availability"
# Devices no reader saw in the last minute: the ones the RFID runs did not reach.
since=$(date -u -d '-1 minute' +%Y-%m-%dT%H:%M:%SZ)
notseen=$(KEY=$hospital QUERY=notseen SINCE=$since wrk -t2 -c8 -d${seconds}s --latency -s Benchmarks/lua/inventory.lua $CARELEDGER_URL)
echo "$notseen"
# The same three at one request in flight per core: latency without queueing behind the others.
list_c2=$(KEY=$hospital QUERY=list wrk -t2 -c2 -d${seconds}s --latency -s Benchmarks/lua/inventory.lua $CARELEDGER_URL)
availability_c2=$(KEY=$hospital QUERY=availability wrk -t2 -c2 -d${seconds}s --latency -s Benchmarks/lua/inventory.lua $CARELEDGER_URL)
notseen_c2=$(KEY=$hospital QUERY=notseen SINCE=$since wrk -t2 -c2 -d${seconds}s --latency -s Benchmarks/lua/inventory.lua $CARELEDGER_URL)
# A not-seen report that finds nothing (no device is an hour old): it walks the whole location.
notseen_none=$(KEY=$hospital QUERY=notseen SINCE=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ) wrk -t2 -c2 -d${seconds}s --latency -s Benchmarks/lua/inventory.lua $CARELEDGER_URL)
echo "$list_c2$availability_c2$notseen_c2$notseen_none"

# The reference: the exchange send, as Benchmarks/exchanges.sh makes it.
hospital_b=$(deploy/admin/create-org.sh "Hospital B" hospital | jq -r .id)
patient=$(curl -s -H "Authorization: Bearer $hospital" -H 'Content-Type: application/json' \
    -d '{"resourceType":"Patient","identifier":[{"system":"urn:bench","value":"1"}]}' $CARELEDGER_URL/v1/patients | jq -r .id)
curl -s -o /dev/null -H "Authorization: Bearer $hospital" -H 'Content-Type: application/json' \
    -d "{\"grantee\":{\"orgId\":\"$hospital_b\"},\"purposes\":[\"TREAT\"],\"categories\":[\"lab\"],\"evidenceHash\":\"sha256:$(printf 'a%.0s' $(seq 64))\"}" \
    $CARELEDGER_URL/v1/patients/$patient/consents
exchange=$(KEY=$hospital TO=$hospital_b PATIENT=$patient wrk -t2 -c32 -d${seconds}s --latency -s Benchmarks/lua/exchange.lua $CARELEDGER_URL)
echo "$exchange"
peak_rss=$(awk '/VmHWM/ {printf "%.0f MB", $2 / 1024}' /proc/$server/status)
count() { psql "$DATABASE_URL" -Atc "SELECT $1"; }
stored_devices=$(count "count(*) FROM devices")
batches=$(count "count(*) FROM rfid_batches")
sightings=$(count "coalesce(sum(sighting_count), 0) FROM rfid_batches")
observations=$(count "count(*) FROM telemetry_observations")
unsequenced=$(count "count(*) FROM ledger_queue q WHERE NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.queue_id = q.id)")
field() { awk -v k="$2" '$1 == k {print $2}' <<<"$1"; }
rps() { awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$1"; }
non2xx() { awk '/Non-2xx/ {print $5}' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$(rps "$exchange")" 'BEGIN {printf "%.2f", a / b}'; }
{
    echo
    echo "## Devices and IoMT, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Machine: $(nproc) cores; server and PostgreSQL (default durability) on it together. Command: \`Benchmarks/devices.sh $seconds $devices\` (git ${BENCH_REVISION:-$(git rev-parse --short HEAD)}). $devices devices registered through the API first, with moves and $monitors device keys (${setup_seconds} s); $bodies telemetry bodies signed in ${sign_seconds} s."
    echo
    echo "| measure | figure | p50 | p99 | non-2xx | ratio to the exchange send (req/s) |"
    echo "|---|---|---|---|---|---|"
    echo "| RFID, batches of 500 reads: 100 tags x 5 repeats (wrk -c8) | $(( $(rps "$rfid_repeats") * 500 )) reads/s ($(rps "$rfid_repeats") batches/s) | $(field "$rfid_repeats" 50%) | $(field "$rfid_repeats" 99%) | $(non2xx "$rfid_repeats") | $(ratio "$(rps "$rfid_repeats")") |"
    echo "| RFID, batches of 500 reads: 500 distinct tags (wrk -c8) | $(( $(rps "$rfid_distinct") * 500 )) reads/s ($(rps "$rfid_distinct") batches/s) | $(field "$rfid_distinct" 50%) | $(field "$rfid_distinct" 99%) | $(non2xx "$rfid_distinct") | $(ratio "$(rps "$rfid_distinct")") |"
    echo "| telemetry, 100 signed readings per request (wrk -c8) | $(( $(rps "$telemetry") * 100 )) readings/s ($(rps "$telemetry") requests/s) | $(field "$telemetry" 50%) | $(field "$telemetry" 99%) | $(non2xx "$telemetry") | $(ratio "$(rps "$telemetry")") |"
    echo "| GET /v1/devices (di+status, location or type; 50 per page; wrk -c8) | $(rps "$list") req/s | $(field "$list" 50%) | $(field "$list" 99%) | $(non2xx "$list") | $(ratio "$(rps "$list")") |"
    echo "| GET /v1/devices/availability?di= (wrk -c8) | $(rps "$availability") req/s | $(field "$availability" 50%) | $(field "$availability" 99%) | $(non2xx "$availability") | $(ratio "$(rps "$availability")") |"
    echo "| GET /v1/devices?notSeenSince=&location= (wrk -c8) | $(rps "$notseen") req/s | $(field "$notseen" 50%) | $(field "$notseen" 99%) | $(non2xx "$notseen") | $(ratio "$(rps "$notseen")") |"
    echo "| GET /v1/devices (as above; wrk -c2) | $(rps "$list_c2") req/s | $(field "$list_c2" 50%) | $(field "$list_c2" 99%) | $(non2xx "$list_c2") | $(ratio "$(rps "$list_c2")") |"
    echo "| GET /v1/devices/availability?di= (wrk -c2) | $(rps "$availability_c2") req/s | $(field "$availability_c2" 50%) | $(field "$availability_c2" 99%) | $(non2xx "$availability_c2") | $(ratio "$(rps "$availability_c2")") |"
    echo "| GET /v1/devices?notSeenSince=&location= (wrk -c2) | $(rps "$notseen_c2") req/s | $(field "$notseen_c2" 50%) | $(field "$notseen_c2" 99%) | $(non2xx "$notseen_c2") | $(ratio "$(rps "$notseen_c2")") |"
    echo "| GET /v1/devices?notSeenSince=&location=, matching none (wrk -c2) | $(rps "$notseen_none") req/s | $(field "$notseen_none" 50%) | $(field "$notseen_none" 99%) | $(non2xx "$notseen_none") | $(ratio "$(rps "$notseen_none")") |"
    echo "| reference: POST /v1/exchanges (4 KB Bundle, wrk -c32) | $(rps "$exchange") req/s | $(field "$exchange" 50%) | $(field "$exchange" 99%) | $(non2xx "$exchange") | 1.00 |"
    echo
    echo "$stored_devices devices, $batches RFID batches ($sightings sightings), $observations telemetry readings stored at the end; $unsequenced queued entries not yet sequenced. Server peak RSS: $peak_rss."
} >> Benchmarks/RESULTS.md
