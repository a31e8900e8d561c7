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

# The oldest az CLI that publishes to Flex Consumption reliably. Flex support came with 2.60.0 (preview; Microsoft's
# flex-consumption-how-to asks for 2.60.0 or later), 2.78.0 made it GA and fixed config-zip uploading an empty package
# (#32044), 2.87.0 fixed config-zip looping forever on the Flex health check (#31394) (Azure CLI release notes).
readonly MIN_AZ_VERSION=2.87.0

# version_at_least <have> <need>: dotted versions compared number by number (2.100.0 is newer than 2.87.0).
version_at_least() {
  local have need i
  IFS=. read -r -a have <<<"$1"
  IFS=. read -r -a need <<<"$2"
  for i in 0 1 2; do
    have[i]=${have[i]:-0}
    need[i]=${need[i]:-0}
    have[i]=${have[i]//[^0-9]/}
    need[i]=${need[i]//[^0-9]/}
    if ((${have[i]:-0} != ${need[i]:-0})); then
      ((${have[i]:-0} > ${need[i]:-0}))
      return
    fi
  done
}

# require_bash: bash 4.4 or newer (the scripts use inherit_errexit). Runs before any 4.4-only option, so it is written
# for bash 3.2 too, which is what macOS ships.
require_bash() {
  version_at_least "${BASH_VERSINFO[0]}.${BASH_VERSINFO[1]}" "${1:-4.4}" ||
    die "bash ${1:-4.4} or newer is needed, this is $BASH_VERSION. On macOS: brew install bash, open a new terminal (Homebrew's bash then comes first on PATH) and run the script again"
}

# require_az: the az CLI, recent enough, signed in (az login, az login --identity or a service principal).
require_az() {
  local version
  require az
  version=$(az version --query '"azure-cli"' --output tsv) || die "az version failed: reinstall the az CLI"
  version_at_least "$version" "$MIN_AZ_VERSION" ||
    die "az CLI $version is too old for Flex Consumption: $MIN_AZ_VERSION or newer is needed (az upgrade)"
  az account show --output none 2>/dev/null || die "not signed in: run az login (or az login --identity)"
}

# retry <timeout-s> <what it waits for> <error-pattern> <command...>: runs the command until it succeeds, waiting 10,
# 20, 40, then 60 s between attempts and saying so. An error not matching the pattern (grep -E; '' matches all) is not
# a wait, so it fails at once. Gives up with the last error once the next wait would pass the timeout.
retry() {
  local timeout=$1 what=$2 pattern=$3 waited=0 delay=10 attempt=1 errors
  shift 3
  errors=$(mktemp)
  until "$@" 2>"$errors"; do
    if [[ -n $pattern ]] && ! grep -qE -- "$pattern" "$errors"; then
      cat "$errors" >&2
      rm -f "$errors"
      return 1
    fi
    if ((waited + delay > timeout)); then
      cat "$errors" >&2
      rm -f "$errors"
      note "gave up after ${waited} s waiting for $what"
      return 1
    fi
    note "waiting for $what: attempt $attempt failed ($(grep -m1 -oE -- "$pattern.{0,80}" "$errors" | head -c 120 || true)); retry in ${delay} s (waited ${waited} s of ${timeout} s)"
    sleep "$delay"
    waited=$((waited + delay))
    delay=$((delay * 2 > 60 ? 60 : delay * 2))
    attempt=$((attempt + 1))
  done
  # The successful attempt's own messages (warnings, build output) still reach the terminal.
  cat "$errors" >&2
  rm -f "$errors"
}

# What a new role assignment's propagation looks like from az: 403 / authorization errors.
readonly ROLE_PROPAGATION_ERRORS='Forbidden|403|[Aa]uthorization|not authorized|does not have (secrets )?(list )?permission'
# Role assignments can take up to 10 minutes to propagate (Azure RBAC troubleshooting).
readonly ROLE_PROPAGATION_TIMEOUT=600

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
  parsed=$(jq -r 'to_entries[] | [.key, (.value.value | if type == "array" then map(tostring) | join(" ") else tostring end)] | @tsv' \
    <<<"$json") || return 1
  while IFS=$'\t' read -r name value; do
    printf -v "OUT_$name" '%s' "$value"
  done <<<"$parsed"
}

# vault_secret_names <vault>: names of the secrets in the vault, one per line; waits while the deployer's new Key Vault
# Secrets Officer role propagates.
vault_secret_names() {
  retry "$ROLE_PROPAGATION_TIMEOUT" "Key Vault Secrets Officer on $1 (a new role assignment propagates)" \
    "$ROLE_PROPAGATION_ERRORS" az keyvault secret list --vault-name "$1" --query '[].name' --output tsv ||
    die "cannot list secrets in $1: does this account hold Key Vault Secrets Officer on it?"
}

# put_secret_from_file <vault> <name> <file>: the value never appears on a command line.
put_secret_from_file() {
  az keyvault secret set --vault-name "$1" --name "$2" --file "$3" --encoding utf-8 --output none
}
