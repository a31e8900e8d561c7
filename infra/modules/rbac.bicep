// Least-privilege role assignments, each scoped to the one resource it is for. All role GUIDs live in one map.

@description('Principal ID of the app\'s user-assigned identity.')
param appPrincipalId string

param appStorageAccountName string

@description('Names of the per-region personal-data storage accounts.')
param regionStorageAccountNames array

param keyVaultName string
param appInsightsName string
param communicationServiceName string

@description('Grant queue access on the app account (the reminder job\'s fan-out queue and its trigger).')
param enableHostQueues bool = true

@description('Object ID of whoever runs deploy.sh, so it can seed secrets; empty to skip.')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
param deployerPrincipalType string = 'User'

// Built-in role definition IDs (MicrosoftDocs/azure-docs built-in-roles.md); tests/infra checks each against its name.
var roleDefinitions = {
  // Storage Blob Data Owner: host state, timer checkpoints and the deployment package container.
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  // Storage Queue Data Contributor: the fan-out queue (send, and the trigger's read, delete, poison), with enableHostQueues.
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  // Storage Table Data Contributor: config table and the per-region personal-data tables.
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  // Key Vault Secrets User: resolve Key Vault references.
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  // Key Vault Secrets Officer: the deployer seeds secrets (never the app).
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  // Monitoring Metrics Publisher: send telemetry with local auth off.
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  // Communication and Email Service Owner: the narrowest built-in role that lets an Entra identity use ACS.
  communicationAndEmailServiceOwner: '09976791-48a7-449e-bb21-39d1a415f350'
}

resource appStorage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: appStorageAccountName
}

resource regionStorage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = [for accountName in regionStorageAccountNames: {
  name: accountName
}]

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource acs 'Microsoft.Communication/communicationServices@2023-04-01' existing = {
  name: communicationServiceName
}

resource appBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appStorage.id, appPrincipalId, roleDefinitions.storageBlobDataOwner)
  scope: appStorage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitions.storageBlobDataOwner)
  }
}

resource appQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (enableHostQueues) {
  name: guid(appStorage.id, appPrincipalId, roleDefinitions.storageQueueDataContributor)
  scope: appStorage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitions.storageQueueDataContributor)
  }
}

resource appTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appStorage.id, appPrincipalId, roleDefinitions.storageTableDataContributor)
  scope: appStorage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitions.storageTableDataContributor)
  }
}

resource regionTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (accountName, i) in regionStorageAccountNames: {
  name: guid(regionStorage[i].id, appPrincipalId, roleDefinitions.storageTableDataContributor)
  scope: regionStorage[i]
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitions.storageTableDataContributor)
  }
}]

resource appSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, roleDefinitions.keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitions.keyVaultSecretsUser)
  }
}

resource deployerSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, roleDefinitions.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitions.keyVaultSecretsOfficer)
  }
}

resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appPrincipalId, roleDefinitions.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitions.monitoringMetricsPublisher)
  }
}

resource appCommunicationOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(acs.id, appPrincipalId, roleDefinitions.communicationAndEmailServiceOwner)
  scope: acs
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitions.communicationAndEmailServiceOwner)
  }
}
