// Azure Communication Services for SMS; dataLocation pins its data at rest. Phone numbers are bought from the portal app.

@description('Globally unique resource name.')
param name string

@description('Where ACS stores data at rest, for example United States, Europe, United Kingdom, Canada, Australia, Japan.')
param dataLocation string = 'United States'

param tags object = {}

@description('Resource IDs of verified email domains the resource sends from (email.bicep).')
param linkedDomains array = []

resource acs 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: name
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    linkedDomains: linkedDomains
  }
}

output name string = acs.name
output endpoint string = 'https://${acs.properties.hostName}'
