#!/usr/bin/env bash
# Builds the fuzzers with libFuzzer + AddressSanitizer and runs them.
#   Tests/Fuzz/run.sh [seconds] [parser|router|all]   (default 600 seconds each, all)
# parser: the request decoder (Sources/HTTP/Wire). router: what a decoded request meets next, the
# router, path parameters and query decoding (Sources/HTTP/{Wire,Messages,Routing,Errors}).
# The seed corpus in Tests/Fuzz/seeds is copied into .build-fuzz/<target>-corpus, which grows across runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-600}"
which="${2:-all}"
out=.build-fuzz
mkdir -p "$out/crashes"

fuzz() {
    local name="$1"; shift
    swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name HTTPFuzz "$@" \
        -o "$out/$name-fuzz" 2> >(grep -v "Cannot export local symbol" >&2)
    mkdir -p "$out/$name-corpus"
    cp -n Tests/Fuzz/seeds/* "$out/$name-corpus/" 2>/dev/null || true
    "$out/$name-fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
        -artifact_prefix="$out/crashes/$name-" -print_final_stats=1 \
        -dict=Tests/Fuzz/http.dict "$out/$name-corpus" 2>&1 | tee "$out/$name-last-run.log" \
        | grep -E "^#[0-9]+ +(DONE|INITED)|stat::|ERROR|Deadly|SUMMARY|==[0-9]+==" || true
    grep -q "Done [0-9]* runs" "$out/$name-last-run.log" || { echo "the $name fuzzer did not finish cleanly" >&2; exit 1; }
}

if [ "$which" = parser ] || [ "$which" = all ]; then
    fuzz parser Sources/HTTP/Wire/*.swift Tests/HTTPTests/DecodeHarness.swift Tests/Fuzz/ParserFuzz.swift
fi
if [ "$which" = router ] || [ "$which" = all ]; then
    fuzz router Sources/HTTP/Wire/*.swift Sources/HTTP/Messages/*.swift Sources/HTTP/Routing/*.swift Sources/HTTP/Errors/*.swift Sources/Telemetry/JSONText.swift \
        Tests/HTTPTests/DecodeHarness.swift Tests/Fuzz/RouterFuzz.swift
fi
if ls "$out/crashes/"* >/dev/null 2>&1; then
    echo "fuzzer found crashes: $(ls "$out/crashes")" >&2
    exit 1
fi
