#!/usr/bin/env bash
# Binds a GS1 company prefix to a manufacturer: bind-company-prefix.sh ORG_ID PREFIX
# Only that organization may then commission serials of the prefix's GTINs.
. "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] || usage "ORG_ID PREFIX"
call POST /v1/supply/company-prefixes "$(jq -cn --arg org "$1" --arg prefix "$2" '{"organization": $org, "prefix": $prefix}')"
