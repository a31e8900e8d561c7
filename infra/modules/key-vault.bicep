// Key Vault for the app's secrets, authorised with Azure RBAC; the app reads it through Key Vault references.

@description('Globally unique vault name (3-24 characters).')
@minLength(3)
@maxLength(24)
param name string

param location string

param tags object = {}

@description('Days a deleted vault or secret can be recovered (7-90); purge protection blocks earlier purges.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  //checkov:skip=CKV_AZURE_109:No VNet in this design; Key Vault references from Flex Consumption and the admin's seeding script need the public endpoint, guarded by RBAC.
  //checkov:skip=CKV_AZURE_189:Same as CKV_AZURE_109: without a VNet, Key Vault references and deploy.sh's seeding reach the vault over its public endpoint, guarded by RBAC.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
