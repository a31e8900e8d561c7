// Alert rules on the connector's own metrics and requests (Log Analytics tables AppMetrics and AppRequests),
// an action group that e-mails them, and a workbook with the same figures. Metric names: shared/telemetry.py.

@description('Name prefix of the alert rules, the action group and the workbook.')
param namePrefix string

param location string

param tags object = {}

@description('Resource ID of the Log Analytics workspace behind Application Insights.')
param workspaceId string

@description('Resource ID of the Application Insights component (the workbook opens on it).')
param appInsightsId string

@description('E-mail address that receives the alerts (an on-call mailbox or distribution list).')
param alertEmail string

@description('Failed Cerner (FHIR or authorization) or Graph calls in 15 minutes that raise an alert.')
@minValue(1)
param dependencyFailureThreshold int = 20

@description('Share of SMS (and, separately, of emails) reported undelivered in an hour, in percent, above which an alert is raised.')
@minValue(1)
@maxValue(100)
param deliveryFailurePercent int = 10

var reminderQuery = '''
AppMetrics
| where Name == "connector.reminders.runs"
| project TimeGenerated, outcome = tostring(Properties.outcome)
| top 3 by TimeGenerated desc
| summarize runs = count(), bad = countif(outcome in ("failed", "carried_over"))
| where runs == 3 and bad == 3
'''
var deliveryQuery = '''
AppMetrics
| where Name in ("connector.sms.delivered", "connector.sms.failed")
| where tostring(Properties.stage) != "send"
| summarize delivered = sumif(Sum, Name == "connector.sms.delivered"), failed = sumif(Sum, Name == "connector.sms.failed")
| extend total = delivered + failed
| where total >= 10
| extend failurePercent = 100.0 * failed / total
'''
var emailDeliveryQuery = '''
AppMetrics
| where Name in ("connector.email.delivered", "connector.email.failed")
| where tostring(Properties.stage) != "send"
| summarize delivered = sumif(Sum, Name == "connector.email.delivered"), failed = sumif(Sum, Name == "connector.email.failed")
| extend total = delivered + failed
| where total >= 10
| extend failurePercent = 100.0 * failed / total
'''
var dependencyQuery = '''
AppMetrics
| where Name == "connector.dependency.failures"
| extend system = tostring(Properties.system)
| where system in ("fhir", "smart", "graph")
| summarize failures = sum(Sum) by system
'''
var healthQuery = '''
AppRequests
| where Name in ("health_ready", "GET /api/health/ready") and ResultCode == "503"
'''

var rules = [
  {
    name: 'reminders-failing'
    displayName: 'Reminder job failed or carried over in 3 runs in a row'
    description: 'The last three runs of sms_notifications failed or left messages for the next run: reminders are late.'
    severity: 2
    query: reminderQuery
    frequency: 'PT5M'
    window: 'PT30M'
    measure: ''
    aggregation: 'Count'
    threshold: 0
  }
  {
    name: 'sms-delivery-failures'
    displayName: 'SMS delivery failure rate over ${deliveryFailurePercent} % in an hour'
    description: 'Delivery reports from ACS say too many SMS did not reach patients (numbers, carriers, opt-outs).'
    severity: 2
    query: deliveryQuery
    frequency: 'PT15M'
    window: 'PT1H'
    measure: 'failurePercent'
    aggregation: 'Maximum'
    threshold: deliveryFailurePercent
  }
  {
    name: 'email-delivery-failures'
    displayName: 'Email delivery failure rate over ${deliveryFailurePercent} % in an hour'
    description: 'Delivery reports from ACS Email say too many emails did not reach patients (bounces, suppressed addresses, sender domain).'
    severity: 2
    query: emailDeliveryQuery
    frequency: 'PT15M'
    window: 'PT1H'
    measure: 'failurePercent'
    aggregation: 'Maximum'
    threshold: deliveryFailurePercent
  }
  {
    name: 'cerner-graph-failures'
    displayName: 'Cerner or Graph failures over ${dependencyFailureThreshold} in 15 minutes'
    description: 'Calls to Oracle Health (FHIR, authorization) or Microsoft Graph fail: launches and joins are affected.'
    severity: 1
    query: dependencyQuery
    frequency: 'PT5M'
    window: 'PT15M'
    measure: 'failures'
    aggregation: 'Maximum'
    threshold: dependencyFailureThreshold
  }
  {
    name: 'health-503'
    displayName: 'Health check answers 503'
    description: '/api/health/ready reports a dependency down (storage, keys or settings).'
    severity: 1
    query: healthQuery
    frequency: 'PT5M'
    window: 'PT5M'
    measure: ''
    aggregation: 'Count'
    threshold: 0
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${namePrefix}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'ehrconnect'
    enabled: true
    emailReceivers: [
      {
        name: 'on-call'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for rule in rules: {
  name: '${namePrefix}-${rule.name}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: rule.displayName
    description: rule.description
    severity: rule.severity
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: rule.frequency
    windowSize: rule.window
    criteria: {
      allOf: [
        empty(rule.measure) ? {
          query: rule.query
          timeAggregation: rule.aggregation
          operator: 'GreaterThan'
          threshold: rule.threshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        } : {
          query: rule.query
          timeAggregation: rule.aggregation
          metricMeasureColumn: rule.measure
          operator: 'GreaterThan'
          threshold: rule.threshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}]

// The workbook shows the figures the alerts watch, over the time range picked on top.
var workbookItems = [
  {
    title: 'Provider launches by outcome'
    query: 'AppMetrics | where Name == "connector.launches" | summarize launches = sum(Sum) by outcome = tostring(Properties.outcome), bin(TimeGenerated, 1h) | render timechart'
  }
  {
    title: 'Launch duration (ms, p50 and p95 of one-minute means)'
    query: 'AppMetrics | where Name == "connector.launch.duration" | extend mean = Sum / ItemCount | summarize p50 = percentile(mean, 50), p95 = percentile(mean, 95) by bin(TimeGenerated, 1h) | render timechart'
  }
  {
    title: 'Patient joins by outcome'
    query: 'AppMetrics | where Name == "connector.joins" | summarize joins = sum(Sum) by outcome = tostring(Properties.outcome), bin(TimeGenerated, 1h) | render timechart'
  }
  {
    title: 'SMS sent, delivered, failed and throttled by kind'
    query: 'AppMetrics | where Name in ("connector.sms.sent", "connector.sms.delivered", "connector.sms.failed", "connector.sms.throttled") | summarize messages = sum(Sum) by Name, kind = tostring(Properties.kind) | order by Name asc, kind asc'
  }
  {
    title: 'Emails sent, delivered, failed and throttled by kind'
    query: 'AppMetrics | where Name in ("connector.email.sent", "connector.email.delivered", "connector.email.failed", "connector.email.throttled") | summarize messages = sum(Sum) by Name, kind = tostring(Properties.kind) | order by Name asc, kind asc'
  }
  {
    title: 'SMS delivery failure rate (%) per hour'
    query: 'AppMetrics | where Name in ("connector.sms.delivered", "connector.sms.failed") and tostring(Properties.stage) != "send" | summarize delivered = sumif(Sum, Name == "connector.sms.delivered"), failed = sumif(Sum, Name == "connector.sms.failed") by bin(TimeGenerated, 1h) | extend failurePercent = iff(delivered + failed == 0, 0.0, 100.0 * failed / (delivered + failed)) | project TimeGenerated, failurePercent | render timechart'
  }
  {
    title: 'Email delivery failure rate (%) per hour'
    query: 'AppMetrics | where Name in ("connector.email.delivered", "connector.email.failed") and tostring(Properties.stage) != "send" | summarize delivered = sumif(Sum, Name == "connector.email.delivered"), failed = sumif(Sum, Name == "connector.email.failed") by bin(TimeGenerated, 1h) | extend failurePercent = iff(delivered + failed == 0, 0.0, 100.0 * failed / (delivered + failed)) | project TimeGenerated, failurePercent | render timechart'
  }
  {
    title: 'Reminder runs: duration (ms) and carry-over'
    query: 'AppMetrics | where Name in ("connector.reminders.duration", "connector.reminders.carried_over") | summarize value = iff(Name == "connector.reminders.duration", sum(Sum) / sum(ItemCount), sum(Sum)) by Name, bin(TimeGenerated, 15m) | render timechart'
  }
  {
    title: 'Reminder runs by outcome'
    query: 'AppMetrics | where Name == "connector.reminders.runs" | summarize runs = sum(Sum) by outcome = tostring(Properties.outcome), bin(TimeGenerated, 1h) | render columnchart'
  }
  {
    title: 'Dependency failures by system and reason'
    query: 'AppMetrics | where Name == "connector.dependency.failures" | summarize failures = sum(Sum) by system = tostring(Properties.system), reason = tostring(Properties.reason), bin(TimeGenerated, 1h) | render timechart'
  }
  {
    title: 'Health check answers'
    query: 'AppRequests | where Name in ("health_ready", "GET /api/health/ready") | summarize requests = count() by ResultCode, bin(TimeGenerated, 1h) | render columnchart'
  }
]

var workbookContent = {
  version: 'Notebook/1.0'
  items: [for (item, index) in workbookItems: {
    type: 3
    name: 'figure-${index}'
    content: {
      version: 'KqlItem/1.0'
      title: item.title
      query: item.query
      queryType: 0
      resourceType: 'microsoft.operationalinsights/workspaces'
      crossComponentResources: [
        workspaceId
      ]
      timeContext: {
        durationMs: 86400000
      }
    }
  }]
  fallbackResourceIds: [
    appInsightsId
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, namePrefix, 'connector-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Teams EHR connector: launches, joins, SMS, email, reminders, dependencies'
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: string(workbookContent)
  }
}

output actionGroupId string = actionGroup.id
