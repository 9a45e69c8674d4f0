#!/usr/bin/env bash
# Builds the request-decoder fuzzer with libFuzzer + AddressSanitizer and runs it.
#   Tests/Fuzz/run.sh [seconds]   (default 600)
# The seed corpus in Tests/Fuzz/seeds is copied into .build-fuzz/corpus, which grows across runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-600}"
out=.build-fuzz
mkdir -p "$out/corpus" "$out/crashes"
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name HTTPFuzz \
    Sources/HTTP/Wire/*.swift Tests/HTTPTests/DecodeHarness.swift Tests/Fuzz/ParserFuzz.swift \
    -o "$out/parser-fuzz" 2> >(grep -v "Cannot export local symbol" >&2)
cp -n Tests/Fuzz/seeds/* "$out/corpus/" 2>/dev/null || true
"$out/parser-fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
    -artifact_prefix="$out/crashes/" -print_final_stats=1 \
    -dict=Tests/Fuzz/http.dict "$out/corpus" 2>&1 | tee "$out/last-run.log" | grep -E "^#[0-9]+ +(DONE|INITED)|stat::|ERROR|Deadly|SUMMARY|==[0-9]+==" || true
if ls "$out/crashes/"* >/dev/null 2>&1; then
    echo "fuzzer found crashes: $(ls "$out/crashes")" >&2
    exit 1
fi
grep -q "Done [0-9]* runs" "$out/last-run.log" || { echo "fuzzer did not finish cleanly" >&2; exit 1; }
