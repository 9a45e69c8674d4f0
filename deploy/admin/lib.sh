# Shared by the admin scripts: one authenticated call to the CareLedger API. Sourced, not executed.
#   CARELEDGER_URL      base URL (default http://127.0.0.1:8080)
#   CARELEDGER_API_KEY  the caller's API key (an admin key for everything but whoami.sh)
# Prints the JSON answer on stdout; on any non-2xx answer prints the server's error on stderr and
# exits 1. The key goes to curl on stdin, never on its command line, where `ps` would show it.
set -euo pipefail
command -v jq >/dev/null || { echo "jq is required (apt-get install jq)" >&2; exit 1; }
CARELEDGER_URL="${CARELEDGER_URL:-http://127.0.0.1:8080}"

usage() {
    echo "usage: $(basename "$0") $*" >&2
    exit 64
}

# call METHOD PATH [JSON_BODY]
call() {
    local method="$1" path="$2" body="${3:-}" output status
    [ -n "${CARELEDGER_API_KEY:-}" ] || { echo "CARELEDGER_API_KEY is not set" >&2; exit 64; }
    output="$(mktemp)"
    local arguments=(-sS -o "$output" -w '%{http_code}' -X "$method" -K -)
    [ -n "$body" ] && arguments+=(-H 'Content-Type: application/json' --data-binary "$body")
    if ! status="$(printf 'header = "Authorization: Bearer %s"\n' "$CARELEDGER_API_KEY" \
            | curl "${arguments[@]}" "$CARELEDGER_URL$path")"; then
        rm -f "$output"
        echo "cannot reach CareLedger at $CARELEDGER_URL" >&2
        exit 1
    fi
    if [ "${status:0:1}" = "2" ]; then
        cat "$output"
        echo
        rm -f "$output"
        return 0
    fi
    local message
    message="$(jq -r '"\(.error.code): \(.error.message)"' <"$output" 2>/dev/null || cat "$output")"
    rm -f "$output"
    echo "HTTP $status $message" >&2
    exit 1
}
