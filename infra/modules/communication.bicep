// Azure Communication Services for SMS; dataLocation pins its data at rest. Phone numbers are bought from the portal app.

@description('Globally unique resource name.')
param name string

@description('Where ACS stores data at rest, for example United States, Europe, United Kingdom, Canada, Australia, Japan.')
param dataLocation string = 'United States'

param tags object = {}

resource acs 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: name
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

output name string = acs.name
output id string = acs.id
output endpoint string = 'https://${acs.properties.hostName}'
