#!/usr/bin/env bash
# Deploy one environment: Bicep (validate, what-if, create), seed missing Key Vault secrets, publish the code, then
# deploy again with smsEventsSubscription so Event Grid delivers ACS SMS events to the function it now finds.
# Safe to re-run: the deployment names are fixed per environment, existing secrets are kept, the code is re-published.
#
# Usage: infra/deploy.sh [--what-if] [--deployer-object-id <id>] <env> <location>     e.g. infra/deploy.sh dev eastus
#   --what-if             only show what would be created, changed and deleted (validate + what-if), change nothing
#   --deployer-object-id  object ID of the account running this (gets Key Vault Secrets Officer to seed secrets), for
#                         when it cannot be read from the az sign-in
#   env                   picks infra/main.<env>.bicepparam
#   location              Flex Consumption region of the app (az functionapp list-flexconsumption-locations)
# Needs: bash 4.4+, az CLI (MIN_AZ_VERSION in common.sh) signed in, jq, openssl; python3 unless Core Tools (func) is
#   installed, which then publishes instead of a zip.
# Optional environment: ASSUME_YES=1 (no prompt after what-if), ENTRA_CLIENT_ID (else looked up),
#   DEPLOYER_PRINCIPAL_ID / DEPLOYER_PRINCIPAL_TYPE (like --deployer-object-id),
#   SMART_CLIENT_SECRET, SMART_SYSTEM_SECRET, SMART_SYSTEM_PRIVATE_KEY_FILE (stored in Key Vault when absent there).
set -euo pipefail

INFRA_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT_DIR=$(dirname "$INFRA_DIR")
# shellcheck source=infra/common.sh
source "$INFRA_DIR/common.sh"
require_bash
# Failures inside $(...) stop the script too.
shopt -s inherit_errexit

USAGE="usage: infra/deploy.sh [--what-if] [--deployer-object-id <id>] <env> <location>"
WHAT_IF_ONLY=0
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
  --what-if) WHAT_IF_ONLY=1 ;;
  --deployer-object-id)
    [[ $# -ge 2 ]] || die "$USAGE"
    DEPLOYER_PRINCIPAL_ID=$2
    shift
    ;;
  *) die "unknown option $1; $USAGE" ;;
  esac
  shift
done
[[ $# -eq 2 ]] || die "$USAGE"
ENV_NAME=$1
AZURE_LOCATION=$2
PARAM_FILE="$INFRA_DIR/main.$ENV_NAME.bicepparam"
[[ -f $PARAM_FILE ]] || die "no parameter file $PARAM_FILE"
DEPLOYMENT=$(deployment_name "$ENV_NAME")
# Its own name, so a failure here leaves the main deployment's record and outputs (read by tenant-setup.sh) intact.
SMS_EVENTS_DEPLOYMENT="$DEPLOYMENT-sms-events"
# The Event Grid triggered function (functions/notifications.py) that infra/modules/sms-events.bicep subscribes.
SMS_EVENTS_FUNCTION=sms_delivery_report
# How long the host may take to list that function after a publish (it indexes the new code first).
FUNCTION_LISTING_TIMEOUT=300
TEMPLATE_ARGS=(--location "$AZURE_LOCATION" --template-file "$INFRA_DIR/main.bicep" --parameters "$PARAM_FILE")
WORK_DIR=$(mktemp -d)
trap 'rm -rf "$WORK_DIR"' EXIT
chmod 700 "$WORK_DIR"

check_prerequisites() {
  require_az
  require jq
  require openssl
  command -v func >/dev/null 2>&1 || require python3
  local acs_role
  acs_role=$(az role definition list --name "$ACS_ROLE_NAME" --query '[0].name' --output tsv)
  [[ $acs_role == "$ACS_ROLE_ID" ]] || die "built-in role '$ACS_ROLE_NAME' is not $ACS_ROLE_ID here (got '$acs_role'); update infra/modules/rbac.bicep"
}

# The signed-in account's object ID is the `oid` claim of its Azure Resource Manager token: this works for users,
# service principals and managed identities (az login --identity) alike, and needs no Microsoft Graph permission.
resolve_deployer() {
  local account_type oid
  account_type=$(az account show --query user.type --output tsv)
  if [[ $account_type == user ]]; then
    DEPLOYER_PRINCIPAL_TYPE=${DEPLOYER_PRINCIPAL_TYPE:-User}
  else
    DEPLOYER_PRINCIPAL_TYPE=${DEPLOYER_PRINCIPAL_TYPE:-ServicePrincipal}
  fi
  if [[ -z ${DEPLOYER_PRINCIPAL_ID:-} ]]; then
    # The token stays in this pipeline; only its oid claim is kept.
    oid=$(az account get-access-token --query accessToken --output tsv 2>/dev/null |
      jq -rR 'split(".")[1] | gsub("-"; "+") | gsub("_"; "/") | . + ("=" * ((4 - length % 4) % 4)) | @base64d | fromjson | .oid // empty' 2>/dev/null) || oid=
    [[ $oid =~ ^[0-9a-fA-F-]{36}$ ]] ||
      die "cannot read the signed-in account's object ID; give it: infra/deploy.sh --deployer-object-id <object ID> ..."
    DEPLOYER_PRINCIPAL_ID=$oid
  fi
  note "deployer $DEPLOYER_PRINCIPAL_TYPE $DEPLOYER_PRINCIPAL_ID (gets Key Vault Secrets Officer to seed secrets)"
  export DEPLOYER_PRINCIPAL_ID DEPLOYER_PRINCIPAL_TYPE
}

resolve_entra_client_id() {
  if [[ -z ${ENTRA_CLIENT_ID:-} ]]; then
    # A failed lookup stops the script (set -e) rather than deploying an empty client ID over a working one.
    ENTRA_CLIENT_ID=$(az ad app list --display-name "$(app_registration_name "$ENV_NAME")" --query '[0].appId' --output tsv)
  fi
  [[ -n $ENTRA_CLIENT_ID ]] || note "no app registration yet: run infra/tenant-setup.sh $ENV_NAME after this, then deploy again"
  export ENTRA_CLIENT_ID
}

# preview: validate, then what-if (what would be created, changed and deleted; unchanged resources left out).
preview() {
  local args=(--name "$DEPLOYMENT" "${TEMPLATE_ARGS[@]}")
  note "validate"
  az deployment sub validate "${args[@]}" --output none
  note "what-if: what this deployment would create (+), change (~) and delete (-)"
  az deployment sub what-if "${args[@]}" --exclude-change-types NoChange Ignore
}

deploy_infrastructure() {
  preview
  if [[ -t 0 && ${ASSUME_YES:-} != 1 ]]; then
    local answer
    read -r -p "Apply these changes? [y/N] " answer
    [[ $answer == [yY]* ]] || die "stopped before create"
  fi
  note "create (deployment $DEPLOYMENT)"
  az deployment sub create --name "$DEPLOYMENT" "${TEMPLATE_ARGS[@]}" --output none
}

# seed_secret <vault> <name> <existing-names> <value-file>: store the value unless the vault already has that secret.
seed_secret() {
  if grep -qxF "$2" <<<"$3"; then
    note "secret $2 kept"
    return 0
  fi
  put_secret_from_file "$1" "$2" "$4"
  SECRETS_CHANGED=1
  note "secret $2 stored"
}

seed_secrets() {
  local vault=$1 existing file="$WORK_DIR/secret"
  existing=$(vault_secret_names "$vault")
  [[ -n $OUT_SEAL_ACTIVE_KEY_ID ]] || die "deployment output SEAL_ACTIVE_KEY_ID is empty"
  printf '%s:' "$OUT_SEAL_ACTIVE_KEY_ID" >"$file"
  openssl rand -base64 32 | tr -d '\n' >>"$file"
  seed_secret "$vault" seal-keys "$existing" "$file"
  # Keyed hashes carry their key's id, so HASH_KEY can later rotate to "h2:<new>,h1:<this>".
  printf 'h1:' >"$file"
  openssl rand -base64 32 | tr -d '\n' >>"$file"
  seed_secret "$vault" hash-key "$existing" "$file"
  if [[ -n ${SMART_CLIENT_SECRET:-} ]]; then
    printf '%s' "$SMART_CLIENT_SECRET" >"$file"
    seed_secret "$vault" smart-client-secret "$existing" "$file"
  fi
  if [[ -n ${SMART_SYSTEM_SECRET:-} ]]; then
    printf '%s' "$SMART_SYSTEM_SECRET" >"$file"
    seed_secret "$vault" smart-system-secret "$existing" "$file"
  fi
  if [[ -n ${SMART_SYSTEM_PRIVATE_KEY_FILE:-} ]]; then
    seed_secret "$vault" smart-system-private-key "$existing" "$SMART_SYSTEM_PRIVATE_KEY_FILE"
  fi
  rm -f "$file"
  report_missing_secrets "$vault"
}

report_missing_secrets() {
  local existing name
  existing=$(vault_secret_names "$1")
  for name in $OUT_KEY_VAULT_SECRETS; do
    grep -qxF "$name" <<<"$existing" ||
      note "WARNING: the app references secret '$name' but $1 has none; store it: az keyvault secret set --vault-name $1 --name $name --file <file>"
  done
}

# publish_code <app> <group>: right after the first deployment the app's identity may not hold its storage role yet
# (role assignments propagate for up to 10 minutes), and publishing to Flex fails with 403 until it does.
publish_code() {
  local app=$1 group=$2
  if command -v func >/dev/null 2>&1; then
    note "publish with Core Tools"
    retry "$ROLE_PROPAGATION_TIMEOUT" "the app's identity to get its storage role (role assignments propagate)" \
      "$ROLE_PROPAGATION_ERRORS" publish_with_core_tools "$app" ||
      die "publishing to $app failed; run infra/deploy.sh again once the error above is fixed"
  else
    note "publish as zip (Core Tools not found)"
    python3 "$INFRA_DIR/package.py" "$PROJECT_DIR" "$WORK_DIR/app.zip"
    retry "$ROLE_PROPAGATION_TIMEOUT" "the app's identity to get its storage role (role assignments propagate)" \
      "$ROLE_PROPAGATION_ERRORS" az functionapp deployment source config-zip --resource-group "$group" --name "$app" \
      --src "$WORK_DIR/app.zip" --build-remote true --output none ||
      die "publishing to $app failed; run infra/deploy.sh again once the error above is fixed"
  fi
}

publish_with_core_tools() {
  (cd "$PROJECT_DIR" && func azure functionapp publish "$1" --python)
}

# wait_for_function <group> <app> <function>: the host lists a function only after indexing the published code.
wait_for_function() {
  retry "$FUNCTION_LISTING_TIMEOUT" "$2 to list the function $3 (the host indexes the new code)" '' \
    az functionapp function show --resource-group "$1" --name "$2" --function-name "$3" --query name --output none ||
    die "function $3 is not listed on $2: check the app's logs in Application Insights, then run deploy.sh again"
}

# The same template and parameters as the first deployment, plus the event subscription (what-if was shown there).
subscribe_sms_events() {
  wait_for_function "$OUT_RESOURCE_GROUP" "$OUT_FUNCTION_APP_NAME" "$SMS_EVENTS_FUNCTION"
  note "subscribe $SMS_EVENTS_FUNCTION to ACS SMS events (deployment $SMS_EVENTS_DEPLOYMENT)"
  SMS_EVENTS_SUBSCRIPTION=true az deployment sub create --name "$SMS_EVENTS_DEPLOYMENT" "${TEMPLATE_ARGS[@]}" --output none
}

main() {
  check_prerequisites
  # Read by readEnvironmentVariable() in the .bicepparam files.
  export AZURE_LOCATION
  # Not before the code is published: the function the subscription points at does not exist yet.
  export SMS_EVENTS_SUBSCRIPTION=false
  SECRETS_CHANGED=0
  resolve_deployer
  resolve_entra_client_id
  if [[ $WHAT_IF_ONLY == 1 ]]; then
    preview
    note "what-if only: nothing was changed. Run without --what-if to apply, seed secrets and publish the code."
    return 0
  fi
  deploy_infrastructure

  load_outputs "$DEPLOYMENT"
  seed_secrets "$OUT_KEY_VAULT_NAME"
  publish_code "$OUT_FUNCTION_APP_NAME" "$OUT_RESOURCE_GROUP"
  if [[ $SECRETS_CHANGED == 1 ]]; then
    note "restart so Key Vault references resolve the new secrets"
    az functionapp restart --resource-group "$OUT_RESOURCE_GROUP" --name "$OUT_FUNCTION_APP_NAME" --output none
  fi
  subscribe_sms_events
  note "done: $OUT_FUNCTION_APP_URL"
}

main
