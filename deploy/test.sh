#!/usr/bin/env bash
# Installs what is missing, then builds and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib/common.sh

ensure_system_packages
ensure_swift
ensure_python_tools
log "building"
swift build --build-tests
log "running tests"
swift test --skip-build
