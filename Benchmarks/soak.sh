#!/usr/bin/env bash
# A soak (Benchmarks/soak.py): the harness's mixed writes flat out for a minute to find their peak,
# then at a fraction of it for the given minutes; per-minute 5xx, p50/p99 and RSS, and the bytes each
# kind of row added.   Benchmarks/soak.sh [minutes] [fraction]   (BIN= a binary; default: release build)
set -euo pipefail
cd "$(dirname "$0")/.."
exec Tests/Faults/run.sh soak --seconds "$(( ${1:-60} * 60 ))" --fraction "${2:-0.7}"
