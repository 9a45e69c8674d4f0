#!/usr/bin/env bash
# Shows the organization, key and role of CARELEDGER_API_KEY.
. "$(dirname "$0")/lib.sh"
[ $# -eq 0 ] || usage ""
call GET /v1/me
