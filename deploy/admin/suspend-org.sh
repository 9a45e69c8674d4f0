#!/usr/bin/env bash
# Suspends an organization: all its keys answer 401 until reactivate-org.sh: suspend-org.sh ORG_ID
. "$(dirname "$0")/lib.sh"
[ $# -eq 1 ] || usage "ORG_ID"
call PATCH "/v1/orgs/$1" '{"status":"suspended"}'
