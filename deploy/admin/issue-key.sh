#!/usr/bin/env bash
# Issues an API key and prints it (with its secret, shown only this once): issue-key.sh ORG_ID ROLE [LABEL]
# Optional environment: EXPIRES_AT (RFC 3339), PATIENT_ID (patient keys), DEVICE_ID (device keys),
# RATE_LIMIT (requests per second).
. "$(dirname "$0")/lib.sh"
[ $# -ge 2 ] && [ $# -le 3 ] || usage "ORG_ID ROLE [LABEL]"
body="$(jq -cn --arg role "$2" --arg name "${3:-}" --arg expires "${EXPIRES_AT:-}" \
    --arg patient "${PATIENT_ID:-}" --arg device "${DEVICE_ID:-}" --arg rate "${RATE_LIMIT:-}" '
    {"role": $role, "label": $name}
    + (if $expires != "" then {"expiresAt": $expires} else {} end)
    + (if $patient != "" then {"patientId": $patient} else {} end)
    + (if $device != "" then {"deviceId": $device} else {} end)
    + (if $rate != "" then {"rateLimitPerSecond": ($rate | tonumber)} else {} end)')"
call POST "/v1/orgs/$1/keys" "$body"
