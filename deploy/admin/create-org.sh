#!/usr/bin/env bash
# Creates an organization: create-org.sh NAME KIND
# KIND: hospital, insurer, national, pharmacy, manufacturer, distributor or auditor.
. "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] || usage "NAME KIND"
call POST /v1/orgs "$(jq -cn --arg name "$1" --arg kind "$2" '{"name": $name, "kind": $kind}')"
