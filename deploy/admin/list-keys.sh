#!/usr/bin/env bash
# Lists an organization's keys (never their secrets), one page: list-keys.sh ORG_ID [AFTER]
. "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] && [ $# -le 2 ] || usage "ORG_ID [AFTER]"
call GET "/v1/orgs/$1/keys?limit=200${2:+&after=$2}"
