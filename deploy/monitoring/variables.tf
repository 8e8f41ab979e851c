variable "account_id" {
  description = "The New Relic account that runs the monitor and owns the alerts."
  type        = number
}

variable "region" {
  description = "The account's data center: US or EU."
  type        = string
  default     = "US"
}

variable "base_url" {
  description = "Public base URL of the service, without a trailing path (https://notes.example.com)."
  type        = string
  validation {
    condition     = can(regex("^https://[^/]+$", var.base_url))
    error_message = "base_url must be https://host, with no path: the monitor calls <base_url>/status."
  }
}

variable "status_token" {
  description = "One of the service's status tokens (status.tokens). Stored as a Synthetics secure credential."
  type        = string
  sensitive   = true
  validation {
    condition     = length(var.status_token) >= 16
    error_message = "status_token must be at least 16 characters, as the service requires outside development."
  }
}

variable "locations" {
  description = "Public Synthetics locations the monitor runs from; an alert needs at least two of them failing."
  type        = list(string)
  default     = ["US_EAST_1", "US_WEST_2", "EU_WEST_1"]
  validation {
    condition     = length(var.locations) >= 2
    error_message = "Use at least two locations, so that one location's own trouble does not page anyone."
  }
}

variable "app_name" {
  description = "The APM application name (newrelic.app_name, or service.name when that is empty)."
  type        = string
  default     = "notes-api"
}

variable "alert_emails" {
  description = "Who is told when the service is down or failing."
  type        = list(string)
  validation {
    condition     = length(var.alert_emails) > 0
    error_message = "At least one e-mail address must receive the alerts."
  }
}

variable "error_rate_percent" {
  description = "Share of transactions with an error (panics and 5xx) that opens an incident, over five minutes."
  type        = number
  default     = 5
}

variable "runbook_url" {
  description = "Where the on-call engineer starts (docs/OPERATIONS.md of the deployed release)."
  type        = string
  default     = ""
}
