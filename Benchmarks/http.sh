#!/usr/bin/env bash
# HTTP core benchmark: wrk against `careledger serve` (release) and, in the same run, Hummingbird 2
# (Benchmarks/reference/hummingbird-hello, built from the local package mirror) and nginx
# (`return 200`), over plain HTTP and over TLS (careledger and nginx, same certificate). Median of N
# rounds per scenario; appends to Benchmarks/RESULTS.md.
#   Benchmarks/http.sh [rounds=3] [seconds=8]        SKIP_HUMMINGBIRD=1 leaves Hummingbird out
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
seconds="${2:-8}"
out=Benchmarks/out
mkdir -p "$out"
command -v wrk >/dev/null && command -v nginx >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx >/dev/null
}
swift build -c release --product careledger >/dev/null
hummingbird=""
if [ -z "${SKIP_HUMMINGBIRD:-}" ]; then
    (cd Benchmarks/reference/hummingbird-hello && swift build -c release >/dev/null)
    hummingbird=Benchmarks/reference/hummingbird-hello/.build/release/HummingbirdHello
fi

our_port=18080
our_tls_port=18443
hb_port=18070
nginx_port=18090
nginx_tls_port=18493
body_file="$out/post-4k.lua"
python3 - "$body_file" <<'PY'
import sys
body = "x" * 4096
open(sys.argv[1], "w").write(
    'wrk.method = "POST"\nwrk.body = "%s"\nwrk.headers["Content-Type"] = "application/octet-stream"\n' % body)
PY

cat > "$out/nginx.conf" <<NGINX
worker_processes auto;
pid $PWD/$out/nginx.pid;
error_log $PWD/$out/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path $PWD/$out/nginx-body;
    server {
        listen 127.0.0.1:$nginx_port;
        location / { default_type application/json; return 200 '{"status":"ok"}'; }
    }
    server {
        listen 127.0.0.1:$nginx_tls_port ssl;
        ssl_certificate TLS_DIR/tls.pem;
        ssl_certificate_key TLS_DIR/tls.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / { default_type application/json; return 200 '{"status":"ok"}'; }
    }
}
NGINX

# The server needs a database and its keys; a throwaway cluster (only /health is measured here).
cluster="$(mktemp -d "${TMPDIR:-/tmp}/careledger-http.XXXXXX")"
[ "$(id -u)" -eq 0 ] && chmod 755 "$cluster"
export DATABASE_URL="$(deploy/lib/pg-cluster.sh start "$cluster/pg" careledger)" CARELEDGER_MIGRATIONS_DIR="$PWD/Migrations"
export CARELEDGER_SIGNING_KEY_FILE="$cluster/signing.pem" CARELEDGER_MASTER_KEY_FILE="$cluster/master.key"
.build/release/careledger keygen --out "$CARELEDGER_SIGNING_KEY_FILE" >/dev/null
.build/release/careledger keygen --master --out "$CARELEDGER_MASTER_KEY_FILE" >/dev/null
.build/release/careledger serve --port "$our_port" > "$out/server.log" &
our_pid=$!
# HTTPS: the same server with a P-256 certificate from a throwaway CA, beside nginx with the same one.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$cluster/tls.key" -out "$cluster/tls.pem" \
    -days 1 -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
chmod 600 "$cluster/tls.key"
.build/release/careledger serve --port "$our_tls_port" --no-migrate --tls-cert "$cluster/tls.pem" --tls-key "$cluster/tls.key" \
    > "$out/server-tls.log" &
our_tls_pid=$!
hb_pid=""
if [ -n "$hummingbird" ]; then
    "$hummingbird" "$hb_port" > "$out/hummingbird.log" 2>&1 &
    hb_pid=$!
fi
sed -i "s|TLS_DIR|$cluster|g" "$out/nginx.conf"
nginx -c "$PWD/$out/nginx.conf"
cleanup() {
    kill -TERM "$our_pid" "$our_tls_pid" 2>/dev/null || true
    [ -n "$hb_pid" ] && kill -TERM "$hb_pid" 2>/dev/null || true
    deploy/lib/pg-cluster.sh stop "$cluster/pg" >/dev/null 2>&1 || true
    rm -rf "$cluster"
    [ -f "$out/nginx.pid" ] && kill "$(cat "$out/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT
for port in "$our_port" ${hb_pid:+"$hb_port"}; do
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
done
for _ in $(seq 100); do curl -fsk "https://127.0.0.1:$our_tls_port/health" >/dev/null && break; sleep 0.1; done

# Prints "req/s p99ms" for one wrk run.
run_wrk() {
    local connections="$1" url="$2"; shift 2
    wrk -t2 -c"$connections" -d"${seconds}s" --latency "$@" "$url" > "$out/wrk.txt"
    local rps p99
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out/wrk.txt")
    p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; printf "%.2f", v}' "$out/wrk.txt")
    echo "$rps $p99"
}

# Median by req/s over the rounds; prints "req/s p99ms".
median_of() {
    local results=()
    for _ in $(seq "$rounds"); do results+=("$(run_wrk "$@")"); done
    printf '%s\n' "${results[@]}" | sort -n -k1 | sed -n "$(( (rounds + 1) / 2 ))p"
}

scenarios=(
    "GET /health keep-alive, 64 conns|64|/health|"
    "GET /health keep-alive, 256 conns|256|/health|"
    "GET /health new connection per request, 64 conns|64|/health|-H Connection:\ close"
    "POST 4 KB keep-alive, 64 conns|64|/health|-s $body_file"
)

tls_scenarios=(
    "HTTPS GET /health keep-alive, 64 conns|64|/health|"
    "HTTPS GET /health new connection (full handshake) per request, 64 conns|64|/health|-H Connection:\ close"
)

rows=()
for scenario in "${tls_scenarios[@]}"; do
    IFS='|' read -r label connections path extra <<<"$scenario"
    eval "args=($extra)"
    ours=$(median_of "$connections" "https://127.0.0.1:$our_tls_port$path" "${args[@]}")
    theirs=$(median_of "$connections" "https://127.0.0.1:$nginx_tls_port$path" "${args[@]}")
    rows+=("| $label | ${ours% *} | ${ours#* } | - | - | ${theirs% *} | ${theirs#* } |")
    echo "$label: careledger ${ours% *} req/s (p99 ${ours#* } ms), nginx ${theirs% *} (p99 ${theirs#* })"
done
for scenario in "${scenarios[@]}"; do
    IFS='|' read -r label connections path extra <<<"$scenario"
    eval "args=($extra)"
    ours=$(median_of "$connections" "http://127.0.0.1:$our_port$path" "${args[@]}")
    hb="- -"
    [ -n "$hb_pid" ] && hb=$(median_of "$connections" "http://127.0.0.1:$hb_port$path" "${args[@]}")
    theirs=$(median_of "$connections" "http://127.0.0.1:$nginx_port$path" "${args[@]}")
    rows+=("| $label | ${ours% *} | ${ours#* } | ${hb% *} | ${hb#* } | ${theirs% *} | ${theirs#* } |")
    echo "$label: careledger ${ours% *} req/s (p99 ${ours#* } ms), hummingbird ${hb% *} (p99 ${hb#* }), nginx ${theirs% *} (p99 ${theirs#* })"
done

peak_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
our_rss_kb=$(peak_kb "$our_pid")
hb_rss_kb=0
[ -n "$hb_pid" ] && hb_rss_kb=$(peak_kb "$hb_pid")
nginx_rss_kb=0
for pid in $(pgrep -f "nginx: worker process" || true) $(cat "$out/nginx.pid"); do
    nginx_rss_kb=$((nginx_rss_kb + $(peak_kb "$pid")))
done
echo "peak RSS: careledger $((our_rss_kb / 1024)) MB, hummingbird $((hb_rss_kb / 1024)) MB, nginx $((nginx_rss_kb / 1024)) MB"

{
    echo
    echo "## HTTP core, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; wrk -t2 on the same machine; median of $rounds rounds of ${seconds}s."
    echo "Command: \`Benchmarks/http.sh $rounds $seconds\` (git $(git rev-parse --short HEAD))."
    echo
    echo "| scenario | careledger req/s | careledger p99 ms | Hummingbird 2 req/s | Hummingbird p99 ms | nginx req/s | nginx p99 ms |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Peak RSS after all runs: careledger $((our_rss_kb / 1024)) MB; Hummingbird $((hb_rss_kb / 1024)) MB; nginx $((nginx_rss_kb / 1024)) MB (master + workers)."
    echo "POST goes to /health: CareLedger has no POST route there yet, so it reads the whole 4 KB body and"
    echo "answers 405; Hummingbird collects the body and answers 200; nginx discards the body and answers 200."
} >> Benchmarks/RESULTS.md
