data "aws_caller_identity" "current" {}

module "pattern" {
  source            = "../aws-securityhub-pattern"
  severity_labels   = var.severity_labels
  record_states     = var.record_states
  workflow_statuses = var.workflow_statuses
  heartbeat_minutes = var.heartbeat_minutes
}

locals {
  rule_arns = [
    aws_cloudwatch_event_rule.findings.arn,
    aws_cloudwatch_event_rule.heartbeat.arn,
  ]
}

# ---------------------------------------------------------------- destination

resource "aws_cloudwatch_event_connection" "pushgate" {
  name               = "${var.name_prefix}-pushgate"
  description        = "API key authentication for the pushgate aws_eventbridge connection."
  authorization_type = "API_KEY"

  auth_parameters {
    api_key {
      key   = var.api_key_header
      value = var.api_key_value
    }
  }
}

resource "aws_cloudwatch_event_api_destination" "pushgate" {
  name                             = "${var.name_prefix}-pushgate"
  description                      = "pushgate push URL (aws_eventbridge connection)."
  invocation_endpoint              = var.push_url
  http_method                      = "POST"
  invocation_rate_limit_per_second = var.invocation_rate_limit_per_second
  connection_arn                   = aws_cloudwatch_event_connection.pushgate.arn
}

# ---------------------------------------------------------------------- rules

resource "aws_cloudwatch_event_rule" "findings" {
  name          = "${var.name_prefix}-securityhub-findings-api"
  description   = "Security Hub findings forwarded to pushgate (applied filter in the event pattern)."
  event_pattern = module.pattern.findings_event_pattern
  tags          = var.tags
}

resource "aws_cloudwatch_event_rule" "heartbeat" {
  name                = "${var.name_prefix}-securityhub-heartbeat-api"
  description         = "pushgate heartbeat: the Scheduled Event of this rule proves the feed is alive."
  schedule_expression = module.pattern.heartbeat_schedule
  tags                = var.tags
}

# ------------------------------------------------------------ invocation role

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "EventBridgeRulesOnly"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = local.rule_arns
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "invoke" {
  name               = "${var.name_prefix}-pushgate-invoke"
  description        = "Lets the pushgate EventBridge rules invoke the pushgate API destination, nothing else."
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "invoke" {
  statement {
    sid       = "InvokePushgateApiDestination"
    effect    = "Allow"
    actions   = ["events:InvokeApiDestination"]
    resources = [aws_cloudwatch_event_api_destination.pushgate.arn]
  }
}

resource "aws_iam_role_policy" "invoke" {
  name   = "invoke-pushgate-api-destination"
  role   = aws_iam_role.invoke.id
  policy = data.aws_iam_policy_document.invoke.json
}

# ----------------------------------------------------------- dead-letter queue

resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name_prefix}-pushgate-dlq"
  message_retention_seconds = var.dlq_message_retention_seconds
  sqs_managed_sse_enabled   = var.dlq_kms_master_key_id == null ? true : null
  kms_master_key_id         = var.dlq_kms_master_key_id
  tags                      = var.tags
}

data "aws_iam_policy_document" "dlq" {
  statement {
    sid       = "EventBridgeRulesDeadLetters"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = local.rule_arns
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.dlq.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.dlq.json
}

# -------------------------------------------------------------------- targets

resource "aws_cloudwatch_event_target" "findings" {
  rule      = aws_cloudwatch_event_rule.findings.name
  target_id = "pushgate-api-destination"
  arn       = aws_cloudwatch_event_api_destination.pushgate.arn
  role_arn  = aws_iam_role.invoke.arn

  retry_policy {
    maximum_event_age_in_seconds = var.maximum_event_age_in_seconds
    maximum_retry_attempts       = var.maximum_retry_attempts
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }

  depends_on = [aws_iam_role_policy.invoke, aws_sqs_queue_policy.dlq]
}

# The Scheduled Event goes to pushgate as EventBridge made it (no input transformer): its
# `id` and `time` are the heartbeat's id and signed time. A retry that arrives later than
# the connection's interval + grace is acknowledged but counts nothing.
resource "aws_cloudwatch_event_target" "heartbeat" {
  rule      = aws_cloudwatch_event_rule.heartbeat.name
  target_id = "pushgate-api-destination-heartbeat"
  arn       = aws_cloudwatch_event_api_destination.pushgate.arn
  role_arn  = aws_iam_role.invoke.arn

  retry_policy {
    maximum_event_age_in_seconds = var.maximum_event_age_in_seconds
    maximum_retry_attempts       = var.maximum_retry_attempts
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }

  depends_on = [aws_iam_role_policy.invoke, aws_sqs_queue_policy.dlq]
}
