output "findings_event_pattern" {
  description = "EventBridge event pattern (JSON) matching Security Hub `Findings - Imported` events with the applied filter."
  value       = jsonencode(local.findings_event_pattern)
}

output "heartbeat_schedule" {
  description = "EventBridge schedule expression for the heartbeat rule, e.g. `rate(5 minutes)`."
  value       = "rate(${var.heartbeat_minutes} ${var.heartbeat_minutes == 1 ? "minute" : "minutes"})"
}
