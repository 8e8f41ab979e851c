output "monitor_id" {
  description = "The Synthetics monitor (Synthetic monitoring > Monitors in New Relic)."
  value       = newrelic_synthetics_script_monitor.status.id
}

output "policy_id" {
  description = "The alert policy with both conditions (Alerts > Alert policies)."
  value       = newrelic_alert_policy.service.id
}
