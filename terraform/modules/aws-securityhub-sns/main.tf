data "aws_caller_identity" "current" {}

module "pattern" {
  source            = "../aws-securityhub-pattern"
  severity_labels   = var.severity_labels
  record_states     = var.record_states
  workflow_statuses = var.workflow_statuses
  heartbeat_minutes = var.heartbeat_minutes
}

locals {
  topic_name = coalesce(var.topic_name, "${var.name_prefix}-securityhub")

  delivery_policy = {
    healthyRetryPolicy = {
      numRetries      = var.delivery_num_retries
      minDelayTarget  = var.delivery_min_delay_seconds
      maxDelayTarget  = var.delivery_max_delay_seconds
      backoffFunction = var.delivery_backoff_function
    }
    throttlePolicy = {
      maxReceivesPerSecond = var.delivery_max_receives_per_second
    }
  }
}

resource "aws_sns_topic" "this" {
  #checkov:skip=CKV_AWS_26:Encryption is opt-in through var.kms_master_key_id. EventBridge cannot publish to a topic encrypted with the AWS managed alias/aws/sns key (its key policy cannot grant events.amazonaws.com), so a safe default key does not exist; callers who need SSE pass a customer managed key.
  name              = local.topic_name
  kms_master_key_id = var.kms_master_key_id
  signature_version = var.signature_version
  tags              = var.tags
}

resource "aws_cloudwatch_event_rule" "findings" {
  name          = "${var.name_prefix}-securityhub-findings"
  description   = "Security Hub findings forwarded to pushgate (applied filter in the event pattern)."
  event_pattern = module.pattern.findings_event_pattern
  tags          = var.tags
}

resource "aws_cloudwatch_event_rule" "heartbeat" {
  name                = "${var.name_prefix}-securityhub-heartbeat"
  description         = "pushgate heartbeat: the Scheduled Event of this rule proves the feed is alive."
  schedule_expression = module.pattern.heartbeat_schedule
  tags                = var.tags
}

data "aws_iam_policy_document" "topic" {
  statement {
    sid       = "AllowEventBridgeRulesToPublish"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values = [
        aws_cloudwatch_event_rule.findings.arn,
        aws_cloudwatch_event_rule.heartbeat.arn,
      ]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "this" {
  arn    = aws_sns_topic.this.arn
  policy = data.aws_iam_policy_document.topic.json
}

resource "aws_cloudwatch_event_target" "findings" {
  rule      = aws_cloudwatch_event_rule.findings.name
  target_id = "pushgate-sns"
  arn       = aws_sns_topic.this.arn

  depends_on = [aws_sns_topic_policy.this]
}

resource "aws_cloudwatch_event_target" "heartbeat" {
  rule      = aws_cloudwatch_event_rule.heartbeat.name
  target_id = "pushgate-sns-heartbeat"
  arn       = aws_sns_topic.this.arn

  depends_on = [aws_sns_topic_policy.this]
}

resource "aws_sns_topic_subscription" "pushgate" {
  topic_arn                       = aws_sns_topic.this.arn
  protocol                        = "https"
  endpoint                        = var.push_url
  endpoint_auto_confirms          = true
  confirmation_timeout_in_minutes = var.confirmation_timeout_in_minutes
  raw_message_delivery            = false
  delivery_policy                 = jsonencode(local.delivery_policy)

  lifecycle {
    precondition {
      condition     = var.delivery_min_delay_seconds <= var.delivery_max_delay_seconds
      error_message = "delivery_min_delay_seconds must not exceed delivery_max_delay_seconds."
    }
  }
}
