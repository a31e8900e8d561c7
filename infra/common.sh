# Shared by deploy.sh and tenant-setup.sh (sourced, not run): names both scripts must agree on, and small helpers.
# shellcheck shell=bash disable=SC2034  # the constants are read by the scripts that source this file

# The Graph service principal's appId is the same in every tenant.
readonly GRAPH_APP_ID=00000003-0000-0000-c000-000000000000
# Built-in role the app's identity gets on ACS; deploy.sh checks the tenant knows it before deploying.
readonly ACS_ROLE_NAME='Communication and Email Service Owner'
readonly ACS_ROLE_ID=09976791-48a7-449e-bb21-39d1a415f350

die() {
  echo "error: $*" >&2
  exit 1
}

note() {
  echo "==> $*" >&2
}

require() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is required (see the Deploy section of README.md, Prerequisites)"
}

# One deployment name per environment, so re-running updates the same deployment (and a location change is refused).
deployment_name() {
  echo "teams-ehr-connector-$1"
}

app_registration_name() {
  echo "teams-ehr-connector-$1"
}

# load_outputs <deployment>: sets OUT_<NAME> for every output of the last subscription deployment (array items
# space-separated). One az call. Returns 1 when the deployment cannot be read; checks explicitly so that holds
# even when called as `load_outputs ... || die`, where bash suspends set -e.
load_outputs() {
  local json parsed name value
  json=$(az deployment sub show --name "$1" --query properties.outputs --output json) || return 1
  parsed=$(python3 -c '
import json, sys
for name, output in json.load(sys.stdin).items():
    value = output["value"]
    print(name, " ".join(map(str, value)) if isinstance(value, list) else value, sep="\t")
' <<<"$json") || return 1
  while IFS=$'\t' read -r name value; do
    printf -v "OUT_$name" '%s' "$value"
  done <<<"$parsed"
}

# vault_secret_names <vault>: names of the secrets in the vault, one per line; retried while a new role assignment propagates.
vault_secret_names() {
  local attempt
  for attempt in 1 2 3 4 5 6; do
    if az keyvault secret list --vault-name "$1" --query '[].name' --output tsv 2>/dev/null; then
      return 0
    fi
    note "Key Vault not readable yet (role assignment propagating), retry $attempt/6 in 20 s"
    sleep 20
  done
  die "cannot list secrets in $1: does this account hold Key Vault Secrets Officer on it?"
}

# put_secret_from_file <vault> <name> <file>: the value never appears on a command line.
put_secret_from_file() {
  az keyvault secret set --vault-name "$1" --name "$2" --file "$3" --encoding utf-8 --output none
}
