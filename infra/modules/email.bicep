// Email for patients without a textable mobile: an Email Communication Service with one sender domain, either
// Azure-managed (<guid>.azurecomm.net, verified at once) or the organization's own (verified through DNS).
// The domain is linked to the ACS resource (linkedDomains in communication.bicep); the app sends through ACS
// with its managed identity, under the role ACS already grants it (rbac.bicep).

@description('Globally unique name of the Email Communication Service.')
param name string

@description('Where email data is stored at rest; the same geography as the ACS resource.')
param dataLocation string = 'United States'

@description('Your own sender domain, for example notify.contoso-health.org; empty for an Azure-managed domain.')
param customDomain string = ''

@description('The sender\'s user name; the app sends from <senderUsername>@<domain>.')
param senderUsername string = 'DoNotReply'

@description('Display name patients see as the sender (no clinic or person name: it is not personal).')
param senderDisplayName string = 'Virtual appointments'

param tags object = {}

var azureManaged = empty(customDomain)

resource emailService 'Microsoft.Communication/emailServices@2023-04-01' = {
  name: name
  // Email services, like ACS, are global resources; dataLocation pins the data.
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

// No engagement tracking: a tracking pixel or rewritten links would tell us when a patient reads an email.
resource managedDomain 'Microsoft.Communication/emailServices/domains@2023-04-01' = if (azureManaged) {
  parent: emailService
  name: 'AzureManagedDomain'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'AzureManaged'
    userEngagementTracking: 'Disabled'
  }
}

resource ownDomain 'Microsoft.Communication/emailServices/domains@2023-04-01' = if (!azureManaged) {
  parent: emailService
  name: azureManaged ? 'unused' : customDomain
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'CustomerManaged'
    userEngagementTracking: 'Disabled'
  }
}

// An Azure-managed domain comes with DoNotReply; a custom domain needs its sender created.
resource ownSender 'Microsoft.Communication/emailServices/domains/senderUsernames@2023-04-01' = if (!azureManaged) {
  parent: ownDomain
  name: senderUsername
  properties: {
    username: senderUsername
    displayName: senderDisplayName
  }
}

output domainId string = azureManaged ? managedDomain.id : ownDomain.id
output senderDomain string = azureManaged ? managedDomain.properties.mailFromSenderDomain : customDomain
output senderAddress string = '${azureManaged ? 'DoNotReply' : senderUsername}@${azureManaged ? managedDomain.properties.mailFromSenderDomain : customDomain}'
@description('DNS records (Domain, SPF, DKIM, DKIM2, DMARC) to add for a custom domain before it can be linked.')
output verificationRecords object = azureManaged ? {} : ownDomain.properties.verificationRecords
