// Teams EHR connector for Oracle Health: everything one environment needs, in one resource group.
targetScope = 'subscription'

@description('Short environment name (dev, test, prod); part of every resource name.')
@minLength(1)
@maxLength(12)
param environmentName string

@description('Region of the function app, its own storage, Key Vault and telemetry (a Flex Consumption region: az functionapp list-flexconsumption-locations).')
param location string

@description('Data regions to provision a personal-data storage account for.')
@allowed([
  'americas'
  'emea'
  'apac'
])
param enabledRegions array = [
  'americas'
]

@description('Data region the portal offers when an organization first saves; must be one of enabledRegions.')
@allowed([
  'americas'
  'emea'
  'apac'
])
param defaultRegion string = 'americas'

@description('Azure region of the americas personal-data account.')
@allowed([
  'eastus'
  'eastus2'
  'centralus'
  'northcentralus'
  'southcentralus'
  'westcentralus'
  'westus'
  'westus2'
  'westus3'
  'canadacentral'
  'canadaeast'
  'brazilsouth'
  'mexicocentral'
])
param americasLocation string = 'eastus'

@description('Azure region of the emea personal-data account.')
@allowed([
  'westeurope'
  'northeurope'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'norwayeast'
  'polandcentral'
  'spaincentral'
  'swedencentral'
  'switzerlandnorth'
  'uksouth'
  'ukwest'
  'uaenorth'
  'southafricanorth'
])
param emeaLocation string = 'westeurope'

@description('Azure region of the apac personal-data account.')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'australiacentral'
  'southeastasia'
  'eastasia'
  'japaneast'
  'japanwest'
  'koreacentral'
  'centralindia'
  'southindia'
])
param apacLocation string = 'australiaeast'

@description('Geography where Azure Communication Services keeps data at rest; set once, it can never be changed.')
@allowed([
  'Africa'
  'Asia Pacific'
  'Australia'
  'Brazil'
  'Canada'
  'Europe'
  'France'
  'Germany'
  'India'
  'Japan'
  'Korea'
  'Norway'
  'Switzerland'
  'United Arab Emirates'
  'United Kingdom'
  'United States'
])
param acsDataLocation string = 'United States'

@description('Tenant of the app registration and the Teams organizer accounts.')
param entraTenantId string = tenant().tenantId

@description('Application (client) ID of the app registration made by tenant-setup.sh; empty until then.')
param entraClientId string = ''

param graphBaseUrl string = 'https://graph.microsoft.com'

@description('Comma list of Entra tenant IDs whose administrators may sign in and whose providers may link (empty: entraTenantId only).')
param allowedTenants string = ''

@description('How often a portal session re-reads the administrator\'s directory roles from Entra, in seconds.')
@minValue(1)
@maxValue(900)
param portalRoleCheckSeconds int = 300

@description('Client ID of the provider app registered in Cerner Code Console.')
param smartClientId string = ''

@description('The Cerner provider app is registered as confidential (its secret goes in Key Vault as smart-client-secret).')
param smartClientConfidential bool = false

@description('Client ID of the Cerner system account (reminders).')
param smartSystemClientId string = ''

@description('How the Cerner system account authenticates: private_key_jwt (key in Key Vault as smart-system-private-key), client_secret (smart-system-secret), or none.')
@allowed([
  'none'
  'private_key_jwt'
  'client_secret'
])
param smartSystemAuth string = 'none'

@description('Key ID (kid) of the system account key in the JWKS registered with Cerner.')
param smartSystemKeyId string = ''

@description('Key ID in SEAL_KEYS used to seal new links and cookies; deploy.sh generates this key.')
param sealActiveKeyId string = 'k1'

@description('NCRONTAB schedule of the reminder job.')
param smsSchedule string = '0 */5 * * * *'

@minValue(1)
param smsRatePerMinute int = 200

@minValue(1)
param smsLookaheadHours int = 26

@description('Whether the reminder timer hands each endpoint to a queue-triggered function: auto (above smsFanoutDepartments), always or never.')
@allowed([
  'auto'
  'always'
  'never'
])
param smsFanout string = 'auto'

@minValue(1)
param smsFanoutDepartments int = 200

@description('Storage queue of the reminder job\'s fan-out (created with <name>-poison on the app\'s account).')
param smsQueueName string = 'sms-slices'

@description('Send notification emails (Email Communication Service, sender domain linked to ACS). Off: SMS only.')
param emailEnabled bool = true

@description('Your own sender domain (for example notify.contoso-health.org); empty for an Azure-managed domain.')
param emailCustomDomain string = ''

@description('Link the custom domain to ACS. Set it true in a second deployment, once the DNS records in the output EMAIL_VERIFICATION_RECORDS are added and the domain shows Verified; an Azure-managed domain is linked at once.')
param emailCustomDomainVerified bool = false

@minValue(1)
@description('Emails per minute from the sender address (ACS limits a new resource; raise it with a support request).')
param emailRatePerMinute int = 30

param licenseSkuPartNumbers string = 'Microsoft_Cloud_for_Healthcare,TEAMS_EHR_CONNECTOR'

param licenseEnforceInTest bool = false

@minValue(1)
param httpTimeoutSeconds int = 10

@description('Seconds an instance reuses the endpoint and organization rows of launches and patient links.')
@minValue(0)
param configCacheSeconds int = 30

@description('Hosts the connector talks to for an EHR (a leading dot: any host under that domain).')
param trustedEhrHosts string = '.cerner.com'

@minValue(0)
param joinWindowMinutes int = 30

@minValue(0)
param linkGraceHours int = 2

@minValue(1)
param lobbyAlertMinutes int = 5

@description('Space-separated https origins allowed to embed the provider pages in a frame (hospitals that embed them); empty: none.')
param providerFrameAncestors string = ''

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Zone-redundant storage (ZRS) for every account whose region has availability zones; LRS elsewhere. Both keep all copies inside the region.')
param zoneRedundantStorage bool = false

@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteRetentionInDays int = 90

@description('Grant the app queue access on its own account (the reminder job\'s fan-out queue trigger needs it).')
param enableHostQueues bool = true

@description('Object ID of whoever runs deploy.sh; gets Key Vault Secrets Officer to seed secrets. Empty to skip.')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
param deployerPrincipalType string = 'User'

@description('Subscribe the function sms_delivery_report to ACS SMS events. deploy.sh sets it in a second deployment, once the code is published: Event Grid refuses a function that does not exist yet.')
param smsEventsSubscription bool = false

@description('E-mail address the alert rules (reminder job, SMS delivery, Cerner and Graph failures, health) notify; empty: no alerts are created.')
param alertEmail string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  app: 'teams-ehr-connector'
  env: environmentName
}
var regionLocations = {
  americas: americasLocation
  emea: emeaLocation
  apac: apacLocation
}
var allRegions = [
  'americas'
  'emea'
  'apac'
]
// Regions with availability zones, where ZRS can be created (MicrosoftDocs/reliability-docs,
// articles/reliability/regions-list.md, ms.date 09/23/2025). A region missing here only costs zone redundancy (LRS).
var availabilityZoneRegions = [
  'australiaeast'
  'austriaeast'
  'belgiumcentral'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'chilecentral'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'indonesiacentral'
  'israelcentral'
  'italynorth'
  'japaneast'
  'japanwest'
  'koreacentral'
  'malaysiawest'
  'mexicocentral'
  'newzealandnorth'
  'northeurope'
  'norwayeast'
  'polandcentral'
  'qatarcentral'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'spaincentral'
  'swedencentral'
  'switzerlandnorth'
  'uaenorth'
  'uksouth'
  'westeurope'
  'westus2'
  'westus3'
]
var appStorageName = 'st${resourceToken}'
var deploymentContainerName = 'app-package'
var functionAppName = 'func-${resourceToken}'

resource rg 'Microsoft.Resources/resourceGroups@2024-11-01' = {
  name: 'rg-teams-ehr-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module appStorage 'modules/storage-account.bicep' = {
  name: 'storage-app'
  scope: rg
  params: {
    name: appStorageName
    location: location
    tags: tags
    skuName: (zoneRedundantStorage && contains(availabilityZoneRegions, location)) ? 'Standard_ZRS' : 'Standard_LRS'
    containers: [
      deploymentContainerName
    ]
    tables: [
      'config'
    ]
    queues: [
      smsQueueName
      '${smsQueueName}-poison'
    ]
  }
}

// One module per possible region, deployed only when enabled, so each keeps a fixed index (americas 0, emea 1, apac 2).
module regionStorage 'modules/storage-account.bicep' = [for region in allRegions: if (contains(enabledRegions, region)) {
  name: 'storage-${region}'
  scope: rg
  params: {
    name: 'st${region}${resourceToken}'
    location: regionLocations[region]
    tags: union(tags, {
      dataRegion: region
    })
    skuName: (zoneRedundantStorage && contains(availabilityZoneRegions, regionLocations[region])) ? 'Standard_ZRS' : 'Standard_LRS'
    tables: [
      'ehrusers'
      'ledger'
      'usage'
    ]
  }
}]

module keyVault 'modules/key-vault.bicep' = {
  name: 'key-vault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionInDays
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
  }
}

module alerts 'modules/alerts.bicep' = if (!empty(alertEmail)) {
  name: 'alerts'
  scope: rg
  params: {
    namePrefix: 'connector-${resourceToken}'
    location: location
    tags: tags
    workspaceId: monitoring.outputs.workspaceId
    appInsightsId: monitoring.outputs.appInsightsId
    alertEmail: alertEmail
  }
}

module email 'modules/email.bicep' = if (emailEnabled) {
  name: 'email'
  scope: rg
  params: {
    name: 'email-${resourceToken}'
    dataLocation: acsDataLocation
    customDomain: emailCustomDomain
    tags: tags
  }
}

// A custom domain can be linked (and sent from) only once its DNS records are verified.
var emailLinked = emailEnabled && (empty(emailCustomDomain) || emailCustomDomainVerified)

module communication 'modules/communication.bicep' = {
  name: 'communication'
  scope: rg
  params: {
    name: 'acs-${resourceToken}'
    dataLocation: acsDataLocation
    linkedDomains: emailLinked ? [email.outputs.domainId] : []
    tags: tags
  }
}

var regionTableEndpoints = {
  americas: contains(enabledRegions, 'americas') ? regionStorage[0].outputs.tableEndpoint : ''
  emea: contains(enabledRegions, 'emea') ? regionStorage[1].outputs.tableEndpoint : ''
  apac: contains(enabledRegions, 'apac') ? regionStorage[2].outputs.tableEndpoint : ''
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  dependsOn: [
    regionStorage
  ]
  params: {
    appPrincipalId: identity.outputs.principalId
    appStorageAccountName: appStorage.outputs.name
    regionStorageAccountNames: [for region in enabledRegions: 'st${region}${resourceToken}']
    keyVaultName: keyVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    communicationServiceName: communication.outputs.name
    enableHostQueues: enableHostQueues
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  // The app's first start needs its storage and vault roles in place.
  dependsOn: [
    rbac
  ]
  params: {
    planName: 'plan-${resourceToken}'
    appName: functionAppName
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: appStorage.outputs.name
    storageBlobEndpoint: appStorage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    tableEndpoint: appStorage.outputs.tableEndpoint
    regionTableEndpoints: regionTableEndpoints
    appInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultUri: keyVault.outputs.uri
    acsEndpoint: communication.outputs.endpoint
    acsResourceId: communication.outputs.id
    defaultRegion: defaultRegion
    entraTenantId: entraTenantId
    entraClientId: entraClientId
    graphBaseUrl: graphBaseUrl
    allowedTenants: allowedTenants
    portalRoleCheckSeconds: portalRoleCheckSeconds
    smartClientId: smartClientId
    smartClientConfidential: smartClientConfidential
    smartSystemClientId: smartSystemClientId
    smartSystemAuth: smartSystemAuth
    smartSystemKeyId: smartSystemKeyId
    sealActiveKeyId: sealActiveKeyId
    smsSchedule: smsSchedule
    smsRatePerMinute: smsRatePerMinute
    smsLookaheadHours: smsLookaheadHours
    smsFanout: smsFanout
    smsFanoutDepartments: smsFanoutDepartments
    smsQueueEndpoint: appStorage.outputs.queueEndpoint
    smsQueueName: smsQueueName
    emailSenderAddress: emailLinked ? email.outputs.senderAddress : ''
    emailRatePerMinute: emailRatePerMinute
    licenseSkuPartNumbers: licenseSkuPartNumbers
    licenseEnforceInTest: licenseEnforceInTest
    httpTimeoutSeconds: httpTimeoutSeconds
    configCacheSeconds: configCacheSeconds
    trustedEhrHosts: trustedEhrHosts
    joinWindowMinutes: joinWindowMinutes
    linkGraceHours: linkGraceHours
    lobbyAlertMinutes: lobbyAlertMinutes
    providerFrameAncestors: providerFrameAncestors
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
  }
}

// Always deployed, so every run keeps the topic; only the subscription waits for smsEventsSubscription.
module smsEvents 'modules/sms-events.bicep' = {
  name: 'sms-events'
  scope: rg
  params: {
    topicName: 'egst-${resourceToken}'
    communicationServiceName: communication.outputs.name
    functionAppId: functionApp.outputs.id
    subscribe: smsEventsSubscription
    tags: tags
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output RESOURCE_GROUP string = rg.name
output FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_APP_URL string = functionApp.outputs.url
output KEY_VAULT_NAME string = keyVault.outputs.name
output KEY_VAULT_URI string = keyVault.outputs.uri
output ACS_NAME string = communication.outputs.name
output ACS_ENDPOINT string = communication.outputs.endpoint
output SMS_EVENTS_TOPIC string = smsEvents.outputs.topicName
output STORAGE_ACCOUNT_NAME string = appStorage.outputs.name
output TABLE_ENDPOINT string = appStorage.outputs.tableEndpoint
output TABLE_ENDPOINT_AMERICAS string = regionTableEndpoints.americas
output TABLE_ENDPOINT_EMEA string = regionTableEndpoints.emea
output TABLE_ENDPOINT_APAC string = regionTableEndpoints.apac
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output APPLICATIONINSIGHTS_CONNECTION_STRING string = monitoring.outputs.connectionString
output SEAL_ACTIVE_KEY_ID string = sealActiveKeyId
output KEY_VAULT_SECRETS array = functionApp.outputs.referencedSecrets
output EMAIL_SENDER_ADDRESS string = emailLinked ? email.outputs.senderAddress : ''
output EMAIL_SENDER_DOMAIN string = emailEnabled ? email.outputs.senderDomain : ''
output EMAIL_VERIFICATION_RECORDS object = emailEnabled ? email.outputs.verificationRecords : {}
