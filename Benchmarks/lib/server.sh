# Sourced by the benchmark scripts: builds the server, starts a throwaway cluster with default
# durability, makes keys, migrates, bootstraps, and serves on port $1 (removed again on exit).
# Sets: bin, work, DATABASE_URL, CARELEDGER_URL, CARELEDGER_API_KEY (the admin key), server.
start_bench_server() {
    local port="$1"
    # BENCH_BIN: a careledger binary built elsewhere (the previous commit, for a same-run comparison).
    if [ -n "${BENCH_BIN:-}" ]; then
        bin="$BENCH_BIN"
    else
        swift build -c release --product careledger >/dev/null
        bin=.build/release/careledger
    fi
    work="$(mktemp -d "${TMPDIR:-/tmp}/careledger-bench.XXXXXX")"
    [ "$(id -u)" -eq 0 ] && chmod 755 "$work"
    server=""
    trap '[ -n "$server" ] && kill "$server" 2>/dev/null; deploy/lib/pg-cluster.sh stop "$work/pg" >/dev/null 2>&1; rm -rf "$work"' EXIT
    . deploy/lib/ledger-database.sh
    prepare_ledger_database "$bin" "$work"
    CARELEDGER_API_KEY="$admin_key"
    # SERVE_FLAGS: extra `careledger serve` flags, e.g. --no-db-pipelines to compare.
    # shellcheck disable=SC2086
    "$bin" serve --port "$port" --no-migrate --key-rate-limit 100000 ${SERVE_FLAGS:-} >/dev/null 2>&1 &
    server=$!
    sleep 2
    export CARELEDGER_URL="http://127.0.0.1:$port" CARELEDGER_API_KEY
}
