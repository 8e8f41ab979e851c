locals {
  status_url   = "${var.base_url}/status"
  monitor_name = "${var.app_name} /status"
  # The key the script reads as $secure.NOTES_API_STATUS_TOKEN.
  credential_key = "NOTES_API_STATUS_TOKEN"
}

# The status token, kept by New Relic and handed to the script at run time.
resource "newrelic_synthetics_secure_credential" "status_token" {
  key         = local.credential_key
  value       = var.status_token
  description = "Bearer token of ${local.status_url}"
}

# Every minute, from every location: GET /status with the token, pass on 200
# with status pass or warn (warn: degraded but serving), fail on anything else.
resource "newrelic_synthetics_script_monitor" "status" {
  name                 = local.monitor_name
  type                 = "SCRIPT_API"
  status               = "ENABLED"
  period               = "EVERY_MINUTE"
  locations_public     = var.locations
  script_language      = "JAVASCRIPT"
  runtime_type         = "NODE_API"
  runtime_type_version = "16.10"
  script = templatefile("${path.module}/status.js", {
    status_url     = local.status_url
    credential_key = newrelic_synthetics_secure_credential.status_token.key
  })

  tag {
    key    = "service"
    values = [var.app_name]
  }
}

resource "newrelic_alert_policy" "service" {
  name                = "${var.app_name} availability"
  incident_preference = "PER_CONDITION"
}

# Down: at least two locations fail in the same minute, twice in a row. One
# location failing alone is that location's network, not the service.
resource "newrelic_nrql_alert_condition" "status_failing" {
  policy_id                    = newrelic_alert_policy.service.id
  type                         = "static"
  name                         = "${local.monitor_name} failing from several locations"
  description                  = "The status route did not answer 200 with status pass or warn. Open it with the token; the failing check names the dependency."
  runbook_url                  = var.runbook_url
  enabled                      = true
  violation_time_limit_seconds = 86400
  aggregation_window           = 60
  aggregation_method           = "event_flow"
  aggregation_delay            = 120

  nrql {
    query = "SELECT uniqueCount(location) FROM SyntheticCheck WHERE monitorName = '${newrelic_synthetics_script_monitor.status.name}' AND result = 'FAILED'"
  }

  critical {
    operator              = "above_or_equals"
    threshold             = 2
    threshold_duration    = 120
    threshold_occurrences = "all"
  }
}

# Failing: the share of transactions with a noticed error (a panic, a 5xx)
# over five minutes. 4xx are the clients' and never count.
resource "newrelic_nrql_alert_condition" "error_rate" {
  policy_id                    = newrelic_alert_policy.service.id
  type                         = "static"
  name                         = "${var.app_name} error rate above ${var.error_rate_percent}%"
  description                  = "Errors in APM > Errors inbox show the stack and the request ID; the stack-trace e-mail has the same."
  runbook_url                  = var.runbook_url
  enabled                      = true
  violation_time_limit_seconds = 86400
  aggregation_window           = 60
  aggregation_method           = "event_flow"
  aggregation_delay            = 120

  nrql {
    query = "SELECT percentage(count(*), WHERE error IS true) FROM Transaction WHERE appName = '${var.app_name}'"
  }

  critical {
    operator              = "above"
    threshold             = var.error_rate_percent
    threshold_duration    = 300
    threshold_occurrences = "all"
  }
}

resource "newrelic_notification_destination" "email" {
  name = "${var.app_name} on-call e-mail"
  type = "EMAIL"

  property {
    key   = "email"
    value = join(",", var.alert_emails)
  }
}

resource "newrelic_notification_channel" "email" {
  name           = "${var.app_name} on-call e-mail"
  type           = "EMAIL"
  product        = "IINT"
  destination_id = newrelic_notification_destination.email.id

  property {
    key   = "subject"
    value = "[${var.app_name}] {{ issueTitle }}"
  }
}

# Every incident of the policy, opened and closed, goes to the e-mail list.
resource "newrelic_workflow" "email" {
  name                  = "${var.app_name} availability to e-mail"
  muting_rules_handling = "NOTIFY_ALL_ISSUES"

  issues_filter {
    name = "this policy"
    type = "FILTER"

    predicate {
      attribute = "labels.policyIds"
      operator  = "EXACTLY_MATCHES"
      values    = [newrelic_alert_policy.service.id]
    }
  }

  destination {
    channel_id            = newrelic_notification_channel.email.id
    notification_triggers = ["ACTIVATED", "CLOSED"]
  }
}
