#!/usr/bin/env bash
# What a hot standby takes off the primary (Benchmarks/replica.py): the same read load against a
# server without and with DATABASE_REPLICA_URL, counted on both databases.
#   Benchmarks/replica.sh [seconds] [readers]     (BIN= a careledger binary; default: the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
exec Tests/Faults/run.sh replica-load --seconds "${1:-30}" --clients "${2:-8}"
