#!/usr/bin/env bash
# Tenant-side setup that Bicep cannot do: the Entra app registration (redirect URIs, `wids` claim), Microsoft Graph
# application permissions with admin consent, and a client secret stored in Key Vault (never printed).
# Run after the first infra/deploy.sh (it needs the app's URL and vault), then run deploy.sh again.
# Safe to re-run: it updates the same registration, grants only what is missing, keeps the stored secret.
#
# Usage: infra/tenant-setup.sh <env> [--rotate-secret]
# Needs: az CLI signed in as a Global Administrator or Privileged Role Administrator of the tenant
#   (granting Graph application permissions), with Key Vault Secrets Officer on the vault (deploy.sh grants it).
# Needs: bash 4.4+, az CLI (MIN_AZ_VERSION in common.sh), jq.
set -euo pipefail

INFRA_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=infra/common.sh
source "$INFRA_DIR/common.sh"
require_bash
# Failures inside $(...) stop the script too.
shopt -s inherit_errexit

[[ $# -ge 1 && $# -le 2 ]] || die "usage: infra/tenant-setup.sh <env> [--rotate-secret]"
ENV_NAME=$1
ROTATE_SECRET=0
if [[ $# -eq 2 ]]; then
  [[ $2 == --rotate-secret ]] || die "unknown option $2"
  ROTATE_SECRET=1
fi
DEPLOYMENT=$(deployment_name "$ENV_NAME")
APP_NAME=$(app_registration_name "$ENV_NAME")
GRAPH_PERMISSIONS=(
  CallRecords.Read.All             # call quality (jitter, packet loss, round trip) for the usage report
  OnlineMeetings.ReadWrite.All     # create the meeting and make the provider co-organizer
  OnlineMeetingArtifact.Read.All   # attendance reports for the usage report
  Organization.Read.All            # licences (subscribedSkus)
  VirtualAppointment.Read.All      # virtual appointment meeting details
)
WORK_DIR=$(mktemp -d)
trap 'rm -rf "$WORK_DIR"' EXIT
chmod 700 "$WORK_DIR"

# ensure_app_registration <app-url>: prints the appId of the one registration for this environment.
ensure_app_registration() {
  local app_id
  app_id=$(az ad app list --display-name "$APP_NAME" --query '[0].appId' --output tsv)
  if [[ -z $app_id ]]; then
    note "create app registration $APP_NAME"
    app_id=$(az ad app create --display-name "$APP_NAME" --sign-in-audience AzureADMyOrg --query appId --output tsv)
  fi
  note "redirect URIs and the wids (directory role) claim"
  az ad app update --id "$app_id" --web-redirect-uris \
    "$1/api/launch/callback" "$1/api/launch/microsoft/callback" "$1/api/portal/auth/callback" --output none
  az ad app update --id "$app_id" --set groupMembershipClaims=DirectoryRole --output none
  az ad sp show --id "$app_id" --output none 2>/dev/null || az ad sp create --id "$app_id" --output none
  echo "$app_id"
}

# grant_graph_permissions <appId>: declares each permission on the app and grants it (admin consent).
grant_graph_permissions() {
  local app_id=$1 graph_url graph_sp app_sp declared granted permission role_id
  graph_url=$(az cloud show --query endpoints.microsoftGraphResourceId --output tsv)
  graph_url=${graph_url%/}
  graph_sp=$(az ad sp show --id "$GRAPH_APP_ID" --query id --output tsv)
  app_sp=$(az ad sp show --id "$app_id" --query id --output tsv)
  declared=$(az ad app show --id "$app_id" \
    --query "requiredResourceAccess[?resourceAppId=='$GRAPH_APP_ID'].resourceAccess[].id" --output tsv)
  granted=$(az rest --method GET --uri "$graph_url/v1.0/servicePrincipals/$app_sp/appRoleAssignments" \
    --query "value[?resourceId=='$graph_sp'].appRoleId" --output tsv)
  for permission in "${GRAPH_PERMISSIONS[@]}"; do
    # Looked up, not hard-coded: the tenant's Graph service principal is the authority on these IDs.
    role_id=$(az ad sp show --id "$GRAPH_APP_ID" --query "appRoles[?value=='$permission'].id | [0]" --output tsv)
    [[ -n $role_id ]] || die "Microsoft Graph has no application permission $permission"
    if ! grep -qxF "$role_id" <<<"$declared"; then
      az ad app permission add --id "$app_id" --api "$GRAPH_APP_ID" --api-permissions "$role_id=Role" --output none
    fi
    if ! grep -qxF "$role_id" <<<"$granted"; then
      note "grant $permission"
      az rest --method POST --uri "$graph_url/v1.0/servicePrincipals/$app_sp/appRoleAssignments" \
        --headers Content-Type=application/json \
        --body "{\"principalId\":\"$app_sp\",\"resourceId\":\"$graph_sp\",\"appRoleId\":\"$role_id\"}" --output none
    fi
  done
}

# store_client_secret <appId> <vault>: a new secret only when the vault has none (or on --rotate-secret).
store_client_secret() {
  local existing
  existing=$(vault_secret_names "$2")
  if grep -qxF entra-client-secret <<<"$existing" && [[ $ROTATE_SECRET != 1 ]]; then
    note "client secret kept (entra-client-secret already in $2)"
    return 0
  fi
  note "new client secret into $2 as entra-client-secret"
  az ad app credential reset --id "$1" --append --display-name "connector-$(date -u +%Y%m%d)" --years 1 \
    --query password --output tsv >"$WORK_DIR/secret"
  put_secret_from_file "$2" entra-client-secret "$WORK_DIR/secret"
  rm -f "$WORK_DIR/secret"
}

main() {
  require_az
  require jq
  local app_id
  load_outputs "$DEPLOYMENT" 2>/dev/null ||
    die "deployment $DEPLOYMENT not found in this subscription: run infra/deploy.sh $ENV_NAME <location> first"
  app_id=$(ensure_app_registration "$OUT_FUNCTION_APP_URL")
  grant_graph_permissions "$app_id"
  store_client_secret "$app_id" "$OUT_KEY_VAULT_NAME"
  note "app registration $APP_NAME: client ID $app_id"
  note "next: run infra/deploy.sh again (it sets ENTRA_CLIENT_ID), then infra/tenant-setup.ps1 -AppId $app_id in PowerShell"
}

main
