using './main.bicep'

// Development: one data region, cheapest settings, short retention. deploy.sh exports the environment variables read here.

param environmentName = 'dev'
param location = readEnvironmentVariable('AZURE_LOCATION', 'eastus')

param enabledRegions = [
  'americas'
]
param defaultRegion = 'americas'
// param americasLocation = 'eastus'        // any americas region listed in main.bicep
// param emeaLocation = 'westeurope'
// param apacLocation = 'australiaeast'
// Where ACS keeps data at rest (one of the geographies main.bicep allows). It can never be changed later.
param acsDataLocation = 'United States'

// Looked up by deploy.sh from the app registration tenant-setup.sh creates; empty on the very first deployment.
param entraClientId = readEnvironmentVariable('ENTRA_CLIENT_ID', '')

// From Cerner Code Console (see README.md, "Deploy"). Secrets go to Key Vault, never here.
param smartClientId = ''
param smartClientConfidential = false
param smartSystemClientId = ''
param smartSystemAuth = 'none'   // 'private_key_jwt' or 'client_secret' once the system account is registered
param smartSystemKeyId = ''

param licenseEnforceInTest = false

param zoneRedundantStorage = false
param logRetentionInDays = 30
param keyVaultSoftDeleteRetentionInDays = 7
// param maximumInstanceCount = 100        // 40-1000
// param instanceMemoryMB = 2048           // 512, 2048 or 4096

// deploy.sh sets this to true only in its second deployment, after publishing the code (see main.bicep).
param smsEventsSubscription = bool(readEnvironmentVariable('SMS_EVENTS_SUBSCRIPTION', 'false'))

param deployerPrincipalId = readEnvironmentVariable('DEPLOYER_PRINCIPAL_ID', '')
param deployerPrincipalType = readEnvironmentVariable('DEPLOYER_PRINCIPAL_TYPE', 'User')

// Who is e-mailed when an alert fires (reminders late, SMS undelivered, Cerner or Graph failing, health 503).
param alertEmail = readEnvironmentVariable('ALERT_EMAIL', '')
