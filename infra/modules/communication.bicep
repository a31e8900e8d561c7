// Azure Communication Services for SMS; dataLocation pins its data at rest. Phone numbers are bought from the portal app.

@description('Globally unique resource name.')
param name string

@description('Geography where ACS keeps data at rest. Fixed when the resource is created: it can never be changed.')
// The geographies documented in learn.microsoft.com/azure/communication-services/concepts/privacy (Data residency).
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
