# Shared by deploy/run.sh and deploy/test.sh: install what a fresh machine lacks.
# Sourced, not executed.

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# System packages: PostgreSQL server and client libraries, OpenSSL headers, curl, jq (admin scripts).
ensure_system_packages() {
    local missing=()
    ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
    pkg-config --exists libpq 2>/dev/null || missing+=(libpq-dev)
    pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    command -v curl >/dev/null || missing+=(curl)
    command -v jq >/dev/null || missing+=(jq)
    # The fault harness runs the server behind a transaction pooler too (Tests/Faults/run.sh pgbouncer).
    command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

ensure_swift() {
    if ! command -v swift >/dev/null; then
        [ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
    fi
    command -v swift >/dev/null || { echo "swift 6 toolchain not found on PATH" >&2; exit 1; }
}

# Python tools used by the test suite (PyPI).
ensure_python_tools() {
    python3 -c 'import openapi_spec_validator' 2>/dev/null \
        || python3 -m pip install -q openapi-spec-validator >/dev/null
    # An independent RFC 8785 implementation, to cross-check our document hashes.
    python3 -c 'import rfc8785' 2>/dev/null || python3 -m pip install -q rfc8785 >/dev/null
    # Property-based tests of the API against openapi.yaml.
    command -v schemathesis >/dev/null || python3 -m pip install -q schemathesis >/dev/null
    # A standard JOSE library, to sign device telemetry as a third-party device would.
    python3 -c 'import jwcrypto' 2>/dev/null || python3 -m pip install -q jwcrypto >/dev/null
    ensure_fhir_validator
}

# An independent FHIR R4 validator for the DetectedIssues we produce: fhir.resources 6.4 is the
# last release whose models are R4 (4.0.1), and it needs pydantic 1, so it lives in its own venv
# (.build-python/, out of git) rather than beside schemathesis.
ensure_fhir_validator() {
    local venv=.build-python/fhir-r4
    "$venv/bin/python" -c 'import fhir.resources.detectedissue' 2>/dev/null && return 0
    python3 -m venv "$venv" >/dev/null 2>&1 || { apt-get install -y python3-venv >/dev/null && python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q "fhir.resources==6.4.0" "pydantic<2" >/dev/null
}
