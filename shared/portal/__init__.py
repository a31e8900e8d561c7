"""The admin configuration portal: sign-in and roles, FHIR endpoints, SMS, integration records, licence."""
