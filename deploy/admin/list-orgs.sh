#!/usr/bin/env bash
# Lists organizations, one page: list-orgs.sh [AFTER]  (AFTER: the "next" cursor of the previous page)
. "$(dirname "$0")/lib.sh"
[ $# -le 1 ] || usage "[AFTER]"
call GET "/v1/orgs?limit=200${1:+&after=$1}"
