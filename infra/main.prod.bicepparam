using './main.bicep'

// Production: every data region an organization may choose, zone-redundant storage, longer retention.
// deploy.sh exports the environment variables read here.

param environmentName = 'prod'
param location = readEnvironmentVariable('AZURE_LOCATION', 'eastus')

param enabledRegions = [
  'americas'
  'emea'
  'apac'
]
param defaultRegion = 'americas'
param americasLocation = 'eastus'
param emeaLocation = 'westeurope'
param apacLocation = 'australiaeast'
// Where ACS keeps data at rest (one of the geographies main.bicep allows). It can never be changed later.
param acsDataLocation = 'United States'

// Looked up by deploy.sh from the app registration tenant-setup.sh creates; empty on the very first deployment.
param entraClientId = readEnvironmentVariable('ENTRA_CLIENT_ID', '')

// From Cerner Code Console (see README.md, "Deploy"). Secrets go to Key Vault, never here.
param smartClientId = ''
param smartClientConfidential = false
param smartSystemClientId = ''
param smartSystemAuth = 'none'   // 'private_key_jwt' once the system account and its JWKS are registered
param smartSystemKeyId = ''

param licenseEnforceInTest = false

// ZRS in each account whose region has availability zones (main.bicep lists them), LRS in the others.
param zoneRedundantStorage = true
param logRetentionInDays = 90
param keyVaultSoftDeleteRetentionInDays = 90
param maximumInstanceCount = 100
param instanceMemoryMB = 2048

// deploy.sh sets this to true only in its second deployment, after publishing the code (see main.bicep).
param smsEventsSubscription = bool(readEnvironmentVariable('SMS_EVENTS_SUBSCRIPTION', 'false'))

param deployerPrincipalId = readEnvironmentVariable('DEPLOYER_PRINCIPAL_ID', '')
param deployerPrincipalType = readEnvironmentVariable('DEPLOYER_PRINCIPAL_TYPE', 'User')

// Who is e-mailed when an alert fires (reminders late, SMS undelivered, Cerner or Graph failing, health 503).
param alertEmail = readEnvironmentVariable('ALERT_EMAIL', '')
