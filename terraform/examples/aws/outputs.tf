output "pushgate_connection_bodies" {
  description = "JSON object {aws_sns = body, aws_eventbridge = body}: the POST /v1/connections bodies for the two feeds. Replace the aws_eventbridge auth.value placeholder with the api_key_value secret before posting."
  value       = jsonencode(local.connection_bodies)
}

output "sns_push_url" {
  description = "Push URL the SNS subscription delivers to (null until sns_connection_id is set)."
  value       = var.sns_connection_id == null ? null : "${local.base_url}/push/aws-sns/${var.sns_connection_id}"
}

output "eventbridge_push_url" {
  description = "Push URL the API destination calls (null until eventbridge_connection_id is set)."
  value       = var.eventbridge_connection_id == null ? null : "${local.base_url}/push/aws-eventbridge/${var.eventbridge_connection_id}"
}

output "sns_topic_arn" {
  description = "ARN of the SNS topic (the predicted ARN, the one in the aws_sns connection body)."
  value       = local.predicted_topic_arn
}

output "sns_subscription_arn" {
  description = "ARN of the pushgate HTTPS subscription (null when the SNS feed is not deployed)."
  value       = try(module.securityhub_sns[0].subscription_arn, null)
}

output "eventbridge_api_destination_arn" {
  description = "ARN of the API destination (null when the EventBridge feed is not deployed)."
  value       = try(module.securityhub_eventbridge[0].api_destination_arn, null)
}

output "eventbridge_dlq_url" {
  description = "Dead-letter queue of the EventBridge feed; watch its depth (null when not deployed)."
  value       = try(module.securityhub_eventbridge[0].dlq_url, null)
}

output "pushgate_destination_body" {
  description = "JSON POST /v1/destinations body of the s3 destination that archives this tenant's events in the bucket (null when archive_bucket_name is not set)."
  value = var.archive_bucket_name == null ? null : jsonencode({
    name       = "${var.connection_name} archive (s3://${module.event_archive[0].bucket_name}/${var.archive_prefix})"
    kind       = "s3"
    filter     = { tenant_ids = [var.tenant_id] }
    start_from = "earliest"
    config     = module.event_archive[0].destination_config
  })
}

output "archive_policy_arn" {
  description = "ARN of the IAM policy that lets pushgate write to the archive bucket; attach it to pushgate's identity if pushgate_role_name is not set (null without a bucket)."
  value       = try(module.event_archive[0].policy_arn, null)
}
