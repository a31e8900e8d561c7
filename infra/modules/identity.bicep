// The one user-assigned managed identity the function app uses for storage, Key Vault, ACS and telemetry.

@description('Name of the identity.')
param name string

@description('Azure region of the identity.')
param location string

param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
