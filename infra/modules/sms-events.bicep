// Event Grid system topic on the ACS resource, and the subscription that delivers SMS and email delivery reports
// and patients' STOP / START replies to the app's Event Grid trigger.

@description('Name of the system topic.')
param topicName string

@description('Name of the ACS resource whose events the topic publishes (same resource group).')
param communicationServiceName string

@description('Resource ID of the function app.')
param functionAppId string

@description('Create the subscription. Only once the code is published: Event Grid refuses a function that does not exist.')
param subscribe bool = false

param tags object = {}

// The Event Grid triggered function in functions/notifications.py; deploy.sh waits for it before subscribing.
var functionName = 'sms_delivery_report'

resource acs 'Microsoft.Communication/communicationServices@2023-04-01' existing = {
  name: communicationServiceName
}

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: topicName
  // ACS is a global resource, so its system topic is global too.
  location: 'global'
  tags: tags
  properties: {
    source: acs.id
    topicType: 'Microsoft.Communication.CommunicationServices'
  }
}

// No dead-letter destination: a dead-lettered event would keep a patient's phone number (and reply text) in clear in
// a blob, which the privacy design rules out. The handler is idempotent and a day of retries covers an app outage;
// dropped deliveries show in the topic's metrics.
resource smsToFunction 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (subscribe) {
  parent: topic
  name: 'sms-delivery-report'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${functionName}'
        // The trigger takes one EventGridEvent per invocation.
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.Communication.SMSDeliveryReportReceived'
        'Microsoft.Communication.SMSReceived'
        'Microsoft.Communication.EmailDeliveryReportReceived'
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

output topicName string = topic.name
