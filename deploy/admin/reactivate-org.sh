#!/usr/bin/env bash
# Reactivates a suspended organization: reactivate-org.sh ORG_ID
. "$(dirname "$0")/lib.sh"
[ $# -eq 1 ] || usage "ORG_ID"
call PATCH "/v1/orgs/$1" '{"status":"active"}'
