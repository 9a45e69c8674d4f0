#!/usr/bin/env bash
# Revokes a key; it answers 401 from the very next request: revoke-key.sh ORG_ID KEY_ID
. "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] || usage "ORG_ID KEY_ID"
call DELETE "/v1/orgs/$1/keys/$2"
