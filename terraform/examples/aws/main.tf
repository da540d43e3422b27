provider "aws" {
  region = var.region
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  base_url   = trimsuffix(var.pushgate_url, "/")
  account_id = data.aws_caller_identity.current.account_id

  # The topic name is fixed, so its ARN is known before it exists: the aws_sns
  # connection can be created (it needs topic_arns) before the first apply.
  topic_name          = "${var.name_prefix}-securityhub-findings"
  predicted_topic_arn = "arn:${data.aws_partition.current.partition}:sns:${var.region}:${local.account_id}:${local.topic_name}"

  stream                     = "cloud_aws_securityhub_alert"
  heartbeat_interval_seconds = var.heartbeat_minutes * 60

  connection_bodies = {
    aws_sns = {
      tenant_id                  = var.tenant_id
      name                       = "${var.connection_name} (SNS, ${local.account_id} ${var.region})"
      source                     = "aws_sns"
      stream                     = local.stream
      heartbeat_interval_seconds = local.heartbeat_interval_seconds
      grace_seconds              = var.grace_seconds
      config = {
        topic_arns   = [local.predicted_topic_arn]
        auto_confirm = true
      }
    }
    aws_eventbridge = {
      tenant_id                  = var.tenant_id
      name                       = "${var.connection_name} (EventBridge, ${local.account_id} ${var.region})"
      source                     = "aws_eventbridge"
      stream                     = local.stream
      heartbeat_interval_seconds = local.heartbeat_interval_seconds
      grace_seconds              = var.grace_seconds
      config = {
        auth = {
          type   = "api_key"
          header = var.api_key_header
          value  = "<set the same secret as api_key_value>"
        }
      }
    }
  }
}

module "securityhub_sns" {
  source = "../../modules/aws-securityhub-sns"
  count  = var.sns_connection_id == null ? 0 : 1

  name_prefix       = var.name_prefix
  topic_name        = local.topic_name
  push_url          = "${local.base_url}/push/aws-sns/${var.sns_connection_id}"
  severity_labels   = var.severity_labels
  record_states     = var.record_states
  workflow_statuses = var.workflow_statuses
  heartbeat_minutes = var.heartbeat_minutes
  tags              = var.tags
}

module "securityhub_eventbridge" {
  source = "../../modules/aws-eventbridge-api-destination"
  count  = var.eventbridge_connection_id == null ? 0 : 1

  name_prefix       = var.name_prefix
  push_url          = "${local.base_url}/push/aws-eventbridge/${var.eventbridge_connection_id}"
  api_key_header    = var.api_key_header
  api_key_value     = var.api_key_value
  severity_labels   = var.severity_labels
  record_states     = var.record_states
  workflow_statuses = var.workflow_statuses
  heartbeat_minutes = var.heartbeat_minutes
  tags              = var.tags
}

# Optional: the bucket of an s3 destination that keeps this tenant's events, and pushgate's
# PutObject-only grant on it (attached to the role pushgate runs as, when named).
module "event_archive" {
  source = "../../modules/aws-s3-destination"
  count  = var.archive_bucket_name == null ? 0 : 1

  name_prefix    = var.name_prefix
  bucket_name    = var.archive_bucket_name
  prefix         = var.archive_prefix
  retention_days = var.archive_retention_days
  kms_key_arn    = var.archive_kms_key_arn
  role_name      = var.pushgate_role_name
  tags           = var.tags
}

check "sns_topic_arn_matches_connection" {
  assert {
    condition     = var.sns_connection_id == null || try(module.securityhub_sns[0].topic_arn == local.predicted_topic_arn, true)
    error_message = "The SNS topic ARN differs from the one in the aws_sns connection body; update the connection's config.topic_arns."
  }
}
