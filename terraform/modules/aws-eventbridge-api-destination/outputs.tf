output "findings_rule_arn" {
  description = "ARN of the EventBridge rule matching Security Hub findings."
  value       = aws_cloudwatch_event_rule.findings.arn
}

output "heartbeat_rule_arn" {
  description = "ARN of the EventBridge heartbeat schedule rule."
  value       = aws_cloudwatch_event_rule.heartbeat.arn
}

output "findings_event_pattern" {
  description = "The event pattern (JSON) of the findings rule, i.e. the applied filter."
  value       = aws_cloudwatch_event_rule.findings.event_pattern
}

output "heartbeat_schedule_expression" {
  description = "Schedule expression of the heartbeat rule."
  value       = aws_cloudwatch_event_rule.heartbeat.schedule_expression
}

output "heartbeat_interval_seconds" {
  description = "Heartbeat period in seconds: the value for the connection's heartbeat_interval_seconds."
  value       = var.heartbeat_minutes * 60
}

output "api_destination_arn" {
  description = "ARN of the EventBridge API destination (the pushgate push URL)."
  value       = aws_cloudwatch_event_api_destination.pushgate.arn
}

output "connection_arn" {
  description = "ARN of the EventBridge connection holding the API key."
  value       = aws_cloudwatch_event_connection.pushgate.arn
}

output "role_arn" {
  description = "ARN of the IAM role the rules use to invoke the API destination."
  value       = aws_iam_role.invoke.arn
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue for events EventBridge could not deliver."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = aws_sqs_queue.dlq.url
}

output "pushgate_connection_config" {
  description = "The config object of the pushgate aws_eventbridge connection (POST /v1/connections). The secret is NOT included: put the same value as var.api_key_value in auth.value."
  value = {
    auth = {
      type   = "api_key"
      header = var.api_key_header
      value  = "<set the same secret as api_key_value>"
    }
  }
}
