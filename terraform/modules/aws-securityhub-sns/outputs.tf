output "topic_arn" {
  description = "ARN of the SNS topic the rules publish to."
  value       = aws_sns_topic.this.arn
}

output "topic_name" {
  description = "Name of the SNS topic."
  value       = aws_sns_topic.this.name
}

output "subscription_arn" {
  description = "ARN of the pushgate HTTPS subscription."
  value       = aws_sns_topic_subscription.pushgate.arn
}

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

output "pushgate_topic_arns" {
  description = "Value for the pushgate aws_sns connection's config.topic_arns."
  value       = [aws_sns_topic.this.arn]
}

output "pushgate_connection_config" {
  description = "The config object of the pushgate aws_sns connection (POST /v1/connections)."
  value = {
    topic_arns   = [aws_sns_topic.this.arn]
    auto_confirm = true
  }
}
