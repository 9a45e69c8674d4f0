#!/usr/bin/env bash
# A soak (Benchmarks/soak.py): the harness's mixed writes flat out for a minute to find their peak,
# then at a fraction of it for the given minutes; per-minute 5xx, p50/p99, RSS and CPU stolen, and
# the bytes each kind of row added.   Benchmarks/soak.sh [minutes] [fraction]   (BIN= a binary;
# default: release build)
set -euo pipefail
cd "$(dirname "$0")/.."
# PostgreSQL as a deployment would run it (deploy/README.md, "PostgreSQL settings"), not its
# defaults: with 128 MB of shared buffers an hour's gigabytes are evicted and read back all along.
# Autovacuum runs of a second or more go to the cluster's postgres.log (KEEP_FAULTS_WORK=1 keeps it).
export PG_EXTRA_SETTINGS="${PG_EXTRA_SETTINGS:--c shared_buffers=2GB -c max_wal_size=4GB -c log_autovacuum_min_duration=1s -c track_wal_io_timing=on}"
exec Tests/Faults/run.sh soak --seconds "$(( ${1:-60} * 60 ))" --fraction "${2:-0.7}"
