// Flex Consumption plan and the Python 3.11 function app, with every app setting the connector reads.

param planName string
param appName string
param location string
param tags object = {}

@description('Resource ID of the user-assigned identity the app runs as.')
param identityId string

@description('Client ID of that identity.')
param identityClientId string

@description('The app\'s own storage account: host state, deployment packages, config table.')
param storageAccountName string

@description('Blob endpoint of that account, ending in a slash.')
param storageBlobEndpoint string

@description('Private container that holds the deployment package.')
param deploymentContainerName string

@description('Table endpoint of the app\'s own account.')
param tableEndpoint string

@description('Table endpoint per data region (americas, emea, apac); empty when the region is not provisioned.')
param regionTableEndpoints object

param appInsightsConnectionString string

@description('Vault URI ending in a slash, for Key Vault references.')
param keyVaultUri string

param acsEndpoint string

@description('Resource ID of the ACS resource; the app accepts only Event Grid events whose topic it is.')
param acsResourceId string

@allowed([
  'americas'
  'emea'
  'apac'
])
param defaultRegion string

param entraTenantId string
param entraClientId string
param graphBaseUrl string
@description('Comma list of Entra tenant IDs allowed to sign in (empty: entraTenantId only).')
param allowedTenants string
@minValue(1)
@maxValue(900)
param portalRoleCheckSeconds int
param smartClientId string

@description('The Cerner provider app is confidential: SMART_CLIENT_SECRET comes from Key Vault.')
param smartClientConfidential bool

param smartSystemClientId string

@description('How the Cerner system account authenticates: a private key (JWKS), a basic secret, or not at all (no reminders).')
@allowed([
  'none'
  'private_key_jwt'
  'client_secret'
])
param smartSystemAuth string

param smartSystemKeyId string
param sealActiveKeyId string

param smsSchedule string
param smsRatePerMinute int

@description('Sender of notification emails at a domain linked to ACS; empty turns email off.')
param emailSenderAddress string = ''

param emailRatePerMinute int = 30
param smsLookaheadHours int
param smsFanout string
param smsFanoutDepartments int

@description('Queue endpoint of the app\'s storage account (the fan-out queue; reached with the managed identity).')
param smsQueueEndpoint string

param smsQueueName string
param licenseSkuPartNumbers string
param licenseEnforceInTest bool
param httpTimeoutSeconds int
param configCacheSeconds int
param trustedEhrHosts string
param joinWindowMinutes int
param linkGraceHours int
param lobbyAlertMinutes int

@description('Space-separated https origins allowed to embed the provider pages in a frame; empty: none.')
param providerFrameAncestors string

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

var secretUri = '${keyVaultUri}secrets'
// Optional secrets are referenced only when used: an unresolvable reference would reach the app as literal text.
var useEntraSecret = !empty(entraClientId)
var useSystemKey = smartSystemAuth == 'private_key_jwt'
var useSystemSecret = smartSystemAuth == 'client_secret'

// Exactly the fields of shared/settings.py that apply in Azure (tests/infra checks both ways), plus the platform's own.
var appSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'

  PUBLIC_BASE_URL: 'https://${site.properties.defaultHostName}'
  DEFAULT_REGION: defaultRegion
  TABLE_ENDPOINT: tableEndpoint
  TABLE_ENDPOINT_AMERICAS: regionTableEndpoints.americas
  TABLE_ENDPOINT_EMEA: regionTableEndpoints.emea
  TABLE_ENDPOINT_APAC: regionTableEndpoints.apac
  AZURE_CLIENT_ID: identityClientId

  ENTRA_AUTHORITY_HOST: environment().authentication.loginEndpoint
  ENTRA_TENANT_ID: entraTenantId
  ENTRA_CLIENT_ID: entraClientId
  ENTRA_CLIENT_SECRET: useEntraSecret ? '@Microsoft.KeyVault(SecretUri=${secretUri}/entra-client-secret/)' : ''
  GRAPH_BASE_URL: graphBaseUrl
  ALLOWED_TENANTS: allowedTenants
  PORTAL_ROLE_CHECK_SECONDS: string(portalRoleCheckSeconds)

  SMART_CLIENT_ID: smartClientId
  SMART_CLIENT_SECRET: smartClientConfidential ? '@Microsoft.KeyVault(SecretUri=${secretUri}/smart-client-secret/)' : ''
  SMART_SYSTEM_CLIENT_ID: smartSystemClientId
  SMART_SYSTEM_PRIVATE_KEY: useSystemKey ? '@Microsoft.KeyVault(SecretUri=${secretUri}/smart-system-private-key/)' : ''
  SMART_SYSTEM_KEY_ID: smartSystemKeyId
  SMART_SYSTEM_SECRET: useSystemSecret ? '@Microsoft.KeyVault(SecretUri=${secretUri}/smart-system-secret/)' : ''

  SEAL_KEYS: '@Microsoft.KeyVault(SecretUri=${secretUri}/seal-keys/)'
  SEAL_ACTIVE_KEY_ID: sealActiveKeyId
  HASH_KEY: '@Microsoft.KeyVault(SecretUri=${secretUri}/hash-key/)'

  ACS_ENDPOINT: acsEndpoint
  ACS_RESOURCE_ID: acsResourceId
  SMS_SCHEDULE: smsSchedule
  SMS_RATE_PER_MINUTE: string(smsRatePerMinute)
  SMS_LOOKAHEAD_HOURS: string(smsLookaheadHours)
  SMS_FANOUT: smsFanout
  SMS_FANOUT_DEPARTMENTS: string(smsFanoutDepartments)
  SMS_QUEUE_ENDPOINT: smsQueueEndpoint
  SMS_QUEUE_NAME: smsQueueName
  EMAIL_SENDER_ADDRESS: emailSenderAddress
  EMAIL_RATE_PER_MINUTE: string(emailRatePerMinute)
  LICENSE_SKU_PART_NUMBERS: licenseSkuPartNumbers
  LICENSE_ENFORCE_IN_TEST: licenseEnforceInTest ? 'true' : 'false'

  HTTP_TIMEOUT_SECONDS: string(httpTimeoutSeconds)
  CONFIG_CACHE_SECONDS: string(configCacheSeconds)
  TRUSTED_EHR_HOSTS: trustedEhrHosts
  JOIN_WINDOW_MINUTES: string(joinWindowMinutes)
  LINK_GRACE_HOURS: string(linkGraceHours)
  LOBBY_ALERT_MINUTES: string(lobbyAlertMinutes)
  PROVIDER_FRAME_ANCESTORS: providerFrameAncestors
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  //checkov:skip=CKV_AZURE_225:Flex Consumption zone redundancy exists in few regions and only at creation; the app keeps no state on its instances (storage is ZRS where the region has zones).
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  //checkov:skip=CKV_AZURE_17:Patients join from any browser without a client certificate; callers authenticate with SMART/Entra or sealed links.
  //checkov:skip=CKV_AZURE_78:Flex Consumption has no FTP endpoint, so there is no ftpsState to set.
  //checkov:skip=CKV_AZURE_222:Patients' phones and the Cerner PowerChart launch reach the app from the internet; every route authenticates.
  //checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero on demand; always-ready instances would bill around the clock.
  //checkov:skip=CKV_AZURE_213:The platform health check evicts instances of a fixed pool; Flex allocates on demand, and /api/health/ready serves monitoring.
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    // Without this the platform resolves Key Vault references with a system-assigned identity the app does not have.
    keyVaultReferenceIdentity: identityId
    // No ftpsState: Flex Consumption has no FTP (nor its basic-auth policy); only the scm policy below applies.
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Separate from the site so PUBLIC_BASE_URL can use the host name the platform assigns.
resource siteAppSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov reads every sites/config as the 'web' config; this one holds only app settings, so its web checks do not apply:
  //checkov:skip=CKV_AZURE_222:App settings only; the site's public access is justified on the site resource.
  //checkov:skip=CKV_AZURE_13:The app authenticates users itself (SMART launch, Entra sign-in, sealed patient links); platform auth would block anonymous patient links.
  //checkov:skip=CKV_AZURE_63:Flex Consumption sends logs and requests to Application Insights, not App Service HTTP logs.
  //checkov:skip=CKV_AZURE_65:Detailed errors would show internals to patients; failures are traced in Application Insights.
  //checkov:skip=CKV_AZURE_66:Failed-request tracing is App Service diagnostics; Application Insights records failed requests.
  //checkov:skip=CKV_AZURE_80:Python app; no .NET Framework.
  //checkov:skip=CKV_AZURE_88:Flex Consumption has no Azure Files content share; packages come from the blob container.
  parent: site
  name: 'appsettings'
  properties: appSettings
}

// Publishing goes through Entra tokens (az CLI, Core Tools), so basic-auth publishing credentials stay off.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = site.id
output name string = site.name
output url string = 'https://${site.properties.defaultHostName}'

@description('Key Vault secrets the app settings reference; deploy.sh reports the ones still missing.')
output referencedSecrets array = concat([
  'seal-keys'
  'hash-key'
], useEntraSecret ? ['entra-client-secret'] : [], smartClientConfidential ? ['smart-client-secret'] : [], useSystemKey ? ['smart-system-private-key'] : [], useSystemSecret ? ['smart-system-secret'] : [])
