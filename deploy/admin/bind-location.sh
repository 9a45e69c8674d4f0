#!/usr/bin/env bash
# Binds a site's GLN (plant, warehouse, pharmacy, hospital) to an organization:
# bind-location.sh ORG_ID GLN NAME. EPCIS events may name only their reporter's own sites.
. "$(dirname "$0")/lib.sh"
[ $# -eq 3 ] || usage "ORG_ID GLN NAME"
call POST /v1/supply/locations "$(jq -cn --arg org "$1" --arg gln "$2" --arg name "$3" '{"organization": $org, "gln": $gln, "name": $name}')"
