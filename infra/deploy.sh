#!/usr/bin/env bash
# Deploy one environment: Bicep (validate, what-if, create), seed missing Key Vault secrets, publish the code, then
# deploy again with smsEventsSubscription so Event Grid delivers ACS SMS events to the function it now finds.
# Safe to re-run: the deployment names are fixed per environment, existing secrets are kept, the code is re-published.
#
# Usage: infra/deploy.sh <env> <location>        e.g. infra/deploy.sh dev eastus
#   env       picks infra/main.<env>.bicepparam
#   location  Flex Consumption region of the app (az functionapp list-flexconsumption-locations)
# Optional environment: ASSUME_YES=1 (no prompt after what-if), ENTRA_CLIENT_ID (else looked up),
#   DEPLOYER_PRINCIPAL_ID / DEPLOYER_PRINCIPAL_TYPE (else the signed-in account),
#   SMART_CLIENT_SECRET, SMART_SYSTEM_SECRET, SMART_SYSTEM_PRIVATE_KEY_FILE (stored in Key Vault when absent there).
set -euo pipefail
# Failures inside $(...) stop the script too.
shopt -s inherit_errexit

INFRA_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT_DIR=$(dirname "$INFRA_DIR")
# shellcheck source=infra/common.sh
source "$INFRA_DIR/common.sh"

[[ $# -eq 2 ]] || die "usage: infra/deploy.sh <env> <location>"
ENV_NAME=$1
AZURE_LOCATION=$2
PARAM_FILE="$INFRA_DIR/main.$ENV_NAME.bicepparam"
[[ -f $PARAM_FILE ]] || die "no parameter file $PARAM_FILE"
DEPLOYMENT=$(deployment_name "$ENV_NAME")
# Its own name, so a failure here leaves the main deployment's record and outputs (read by tenant-setup.sh) intact.
SMS_EVENTS_DEPLOYMENT="$DEPLOYMENT-sms-events"
# The Event Grid triggered function (functions/notifications.py) that infra/modules/sms-events.bicep subscribes.
SMS_EVENTS_FUNCTION=sms_delivery_report
TEMPLATE_ARGS=(--location "$AZURE_LOCATION" --template-file "$INFRA_DIR/main.bicep" --parameters "$PARAM_FILE")
WORK_DIR=$(mktemp -d)
trap 'rm -rf "$WORK_DIR"' EXIT
chmod 700 "$WORK_DIR"

check_prerequisites() {
  require az
  require openssl
  require python3
  az account show --output none 2>/dev/null || die "not signed in: run az login"
  local acs_role
  acs_role=$(az role definition list --name "$ACS_ROLE_NAME" --query '[0].name' --output tsv)
  [[ $acs_role == "$ACS_ROLE_ID" ]] || die "built-in role '$ACS_ROLE_NAME' is not $ACS_ROLE_ID here (got '$acs_role'); update infra/modules/rbac.bicep"
}

resolve_deployer() {
  if [[ -n ${DEPLOYER_PRINCIPAL_ID:-} ]]; then
    DEPLOYER_PRINCIPAL_TYPE=${DEPLOYER_PRINCIPAL_TYPE:-User}
  elif [[ $(az account show --query user.type --output tsv) == user ]]; then
    DEPLOYER_PRINCIPAL_ID=$(az ad signed-in-user show --query id --output tsv)
    DEPLOYER_PRINCIPAL_TYPE=User
  else
    DEPLOYER_PRINCIPAL_ID=$(az ad sp show --id "$(az account show --query user.name --output tsv)" --query id --output tsv)
    DEPLOYER_PRINCIPAL_TYPE=ServicePrincipal
  fi
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

deploy_infrastructure() {
  local args=(--name "$DEPLOYMENT" "${TEMPLATE_ARGS[@]}")
  note "validate"
  az deployment sub validate "${args[@]}" --output none
  note "what-if"
  az deployment sub what-if "${args[@]}"
  if [[ -t 0 && ${ASSUME_YES:-} != 1 ]]; then
    local answer
    read -r -p "Apply these changes? [y/N] " answer
    [[ $answer == [yY]* ]] || die "stopped before create"
  fi
  note "create (deployment $DEPLOYMENT)"
  az deployment sub create "${args[@]}" --output none
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

publish_code() {
  local app=$1 group=$2
  if command -v func >/dev/null 2>&1; then
    note "publish with Core Tools"
    (cd "$PROJECT_DIR" && func azure functionapp publish "$app" --python)
  else
    note "publish as zip (Core Tools not found)"
    python3 "$INFRA_DIR/package.py" "$PROJECT_DIR" "$WORK_DIR/app.zip"
    az functionapp deployment source config-zip --resource-group "$group" --name "$app" \
      --src "$WORK_DIR/app.zip" --build-remote true --output none
  fi
}

# wait_for_function <group> <app> <function>: the host lists a function only after indexing the published code.
wait_for_function() {
  local attempt
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    if az functionapp function show --resource-group "$1" --name "$2" --function-name "$3" --query name --output tsv >/dev/null 2>&1; then
      return 0
    fi
    note "function $3 not listed yet (the host is indexing the new code), retry $attempt/10 in 30 s"
    sleep 30
  done
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
