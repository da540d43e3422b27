# Offline unit tests: mocked AWS provider, plan only.

mock_provider "aws" {
  override_during = plan

  mock_resource "aws_sns_topic" {
    defaults = {
      arn = "arn:aws:sns:eu-west-1:123456789012:t"
    }
  }

  mock_resource "aws_cloudwatch_event_rule" {
    defaults = {
      arn = "arn:aws:events:eu-west-1:123456789012:rule/r"
    }
  }

  mock_resource "aws_sns_topic_subscription" {
    defaults = {
      arn = "arn:aws:sns:eu-west-1:123456789012:t:00000000-0000-0000-0000-000000000001"
    }
  }

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{}"
    }
  }
}

override_resource {
  target          = aws_cloudwatch_event_rule.findings
  override_during = plan
  values = {
    arn = "arn:aws:events:eu-west-1:123456789012:rule/pushgate-securityhub-findings"
  }
}

override_resource {
  target          = aws_cloudwatch_event_rule.heartbeat
  override_during = plan
  values = {
    arn = "arn:aws:events:eu-west-1:123456789012:rule/pushgate-securityhub-heartbeat"
  }
}

variables {
  push_url = "https://pushgate.example.com/push/aws-sns/4f9c2b1e-0000-4000-8000-000000000001"
}

run "defaults" {
  command = plan

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.findings.event_pattern).source == ["aws.securityhub"]
    error_message = "findings rule must match source aws.securityhub"
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.findings.event_pattern)["detail-type"] == ["Security Hub Findings - Imported"]
    error_message = "findings rule must match detail-type Security Hub Findings - Imported"
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.findings.event_pattern).detail.findings.Severity.Label == ["CRITICAL", "HIGH"]
    error_message = "default severity filter must be CRITICAL, HIGH"
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.findings.event_pattern).detail.findings.RecordState == ["ACTIVE"]
    error_message = "default record state filter must be ACTIVE"
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.findings.event_pattern).detail.findings.Workflow.Status == ["NEW", "NOTIFIED"]
    error_message = "default workflow filter must be NEW, NOTIFIED"
  }

  assert {
    condition     = aws_cloudwatch_event_rule.heartbeat.schedule_expression == "rate(5 minutes)"
    error_message = "default heartbeat must be rate(5 minutes)"
  }

  assert {
    condition     = output.heartbeat_interval_seconds == 300
    error_message = "heartbeat_interval_seconds must be 300 by default"
  }

  assert {
    condition     = aws_sns_topic.this.name == "pushgate-securityhub"
    error_message = "default topic name"
  }

  assert {
    condition     = aws_sns_topic.this.kms_master_key_id == null
    error_message = "no KMS key by default"
  }

  assert {
    condition     = aws_sns_topic_subscription.pushgate.protocol == "https"
    error_message = "subscription protocol must be https"
  }

  assert {
    condition     = aws_sns_topic_subscription.pushgate.endpoint == var.push_url
    error_message = "subscription endpoint must be the push URL"
  }

  assert {
    condition     = aws_sns_topic_subscription.pushgate.raw_message_delivery == false
    error_message = "raw_message_delivery must be false (pushgate verifies the SNS envelope signature)"
  }

  assert {
    condition     = aws_sns_topic_subscription.pushgate.endpoint_auto_confirms == true
    error_message = "endpoint_auto_confirms must be true"
  }

  assert {
    condition = jsondecode(aws_sns_topic_subscription.pushgate.delivery_policy).healthyRetryPolicy == {
      numRetries      = 10
      minDelayTarget  = 5
      maxDelayTarget  = 300
      backoffFunction = "exponential"
    }
    error_message = "default healthyRetryPolicy"
  }

  assert {
    condition     = jsondecode(aws_sns_topic_subscription.pushgate.delivery_policy).throttlePolicy.maxReceivesPerSecond == 10
    error_message = "default throttlePolicy.maxReceivesPerSecond"
  }

  assert {
    condition     = aws_cloudwatch_event_target.findings.arn == "arn:aws:sns:eu-west-1:123456789012:t" && aws_cloudwatch_event_target.heartbeat.arn == "arn:aws:sns:eu-west-1:123456789012:t"
    error_message = "both rules must target the topic"
  }

  assert {
    condition     = aws_cloudwatch_event_target.findings.rule == aws_cloudwatch_event_rule.findings.name && aws_cloudwatch_event_target.heartbeat.rule == aws_cloudwatch_event_rule.heartbeat.name
    error_message = "targets must belong to their rules"
  }

  assert {
    condition     = output.pushgate_topic_arns == ["arn:aws:sns:eu-west-1:123456789012:t"]
    error_message = "pushgate_topic_arns must list the topic ARN"
  }

  assert {
    condition     = output.pushgate_connection_config.topic_arns == ["arn:aws:sns:eu-west-1:123456789012:t"] && output.pushgate_connection_config.auto_confirm == true
    error_message = "pushgate_connection_config must carry topic_arns and auto_confirm"
  }

  assert {
    condition     = output.topic_arn == "arn:aws:sns:eu-west-1:123456789012:t"
    error_message = "topic_arn output"
  }
}

run "topic_policy_scoped_to_rules" {
  command = plan

  # The real aws_iam_policy_document is rendered by the provider; mocked here,
  # so check the inputs of the statement instead of its JSON.
  assert {
    condition = one(data.aws_iam_policy_document.topic.statement).principals == toset([{
      type        = "Service"
      identifiers = toset(["events.amazonaws.com"])
    }])
    error_message = "only events.amazonaws.com may publish"
  }

  assert {
    condition     = one(data.aws_iam_policy_document.topic.statement).actions == toset(["sns:Publish"])
    error_message = "the topic policy must allow sns:Publish only"
  }

  assert {
    condition     = one(data.aws_iam_policy_document.topic.statement).resources == toset(["arn:aws:sns:eu-west-1:123456789012:t"])
    error_message = "the topic policy must be scoped to the topic"
  }

  assert {
    condition = one(data.aws_iam_policy_document.topic.statement).condition == toset([
      {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values = [
          "arn:aws:events:eu-west-1:123456789012:rule/pushgate-securityhub-findings",
          "arn:aws:events:eu-west-1:123456789012:rule/pushgate-securityhub-heartbeat",
        ]
      },
      {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = ["123456789012"]
      },
    ])
    error_message = "the topic policy must be conditioned on aws:SourceArn (both rules) and aws:SourceAccount"
  }

  assert {
    condition     = aws_sns_topic_policy.this.arn == "arn:aws:sns:eu-west-1:123456789012:t"
    error_message = "the policy must be attached to the topic"
  }
}

run "custom_filters_and_heartbeat" {
  command = plan

  variables {
    severity_labels   = ["CRITICAL"]
    record_states     = []
    workflow_statuses = ["NEW"]
    heartbeat_minutes = 1
    kms_master_key_id = "alias/pushgate-sns"
    topic_name        = "acme-findings"
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.findings.event_pattern).detail.findings.Severity.Label == ["CRITICAL"]
    error_message = "severity filter"
  }

  assert {
    condition     = !contains(keys(jsondecode(aws_cloudwatch_event_rule.findings.event_pattern).detail.findings), "RecordState")
    error_message = "an empty record_states list must omit the RecordState filter"
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.findings.event_pattern).detail.findings.Workflow.Status == ["NEW"]
    error_message = "workflow filter"
  }

  assert {
    condition     = aws_cloudwatch_event_rule.heartbeat.schedule_expression == "rate(1 minute)"
    error_message = "heartbeat_minutes = 1 must give rate(1 minute)"
  }

  assert {
    condition     = output.heartbeat_interval_seconds == 60
    error_message = "heartbeat_interval_seconds must follow heartbeat_minutes"
  }

  assert {
    condition     = aws_sns_topic.this.kms_master_key_id == "alias/pushgate-sns"
    error_message = "KMS key must be passed to the topic"
  }

  assert {
    condition     = aws_sns_topic.this.name == "acme-findings"
    error_message = "topic_name override"
  }
}

run "no_filters" {
  command = plan

  variables {
    severity_labels   = []
    record_states     = []
    workflow_statuses = []
    heartbeat_minutes = 1440
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.findings.event_pattern) == { source = ["aws.securityhub"], "detail-type" = ["Security Hub Findings - Imported"] }
    error_message = "with every filter empty the pattern must hold only source and detail-type"
  }

  assert {
    condition     = aws_cloudwatch_event_rule.heartbeat.schedule_expression == "rate(1440 minutes)"
    error_message = "heartbeat 1440"
  }
}

run "custom_delivery_policy" {
  command = plan

  variables {
    delivery_num_retries             = 3
    delivery_min_delay_seconds       = 2
    delivery_max_delay_seconds       = 20
    delivery_backoff_function        = "linear"
    delivery_max_receives_per_second = 50
  }

  assert {
    condition     = jsondecode(aws_sns_topic_subscription.pushgate.delivery_policy) == { healthyRetryPolicy = { numRetries = 3, minDelayTarget = 2, maxDelayTarget = 20, backoffFunction = "linear" }, throttlePolicy = { maxReceivesPerSecond = 50 } }
    error_message = "delivery policy must follow the variables"
  }
}

run "rejects_http_push_url" {
  command = plan

  variables {
    push_url = "http://pushgate.example.com/push/aws-sns/4f9c2b1e-0000-4000-8000-000000000001"
  }

  expect_failures = [var.push_url]
}

run "rejects_wrong_push_route" {
  command = plan

  variables {
    push_url = "https://pushgate.example.com/push/aws-eventbridge/4f9c2b1e-0000-4000-8000-000000000001"
  }

  expect_failures = [var.push_url]
}

run "rejects_heartbeat_zero" {
  command = plan

  variables {
    heartbeat_minutes = 0
  }

  expect_failures = [var.heartbeat_minutes]
}

run "rejects_heartbeat_too_long" {
  command = plan

  variables {
    heartbeat_minutes = 1441
  }

  expect_failures = [var.heartbeat_minutes]
}

run "rejects_fractional_heartbeat" {
  command = plan

  variables {
    heartbeat_minutes = 2.5
  }

  expect_failures = [var.heartbeat_minutes]
}

run "rejects_unknown_severity" {
  command = plan

  variables {
    severity_labels = ["SEVERE"]
  }

  expect_failures = [var.severity_labels]
}

run "rejects_unknown_record_state" {
  command = plan

  variables {
    record_states = ["DELETED"]
  }

  expect_failures = [var.record_states]
}

run "rejects_unknown_workflow_status" {
  command = plan

  variables {
    workflow_statuses = ["OPEN"]
  }

  expect_failures = [var.workflow_statuses]
}

run "rejects_too_many_retries" {
  command = plan

  variables {
    delivery_num_retries = 101
  }

  expect_failures = [var.delivery_num_retries]
}

run "rejects_unknown_backoff" {
  command = plan

  variables {
    delivery_backoff_function = "random"
  }

  expect_failures = [var.delivery_backoff_function]
}

run "rejects_min_delay_above_max" {
  command = plan

  variables {
    delivery_min_delay_seconds = 100
    delivery_max_delay_seconds = 10
  }

  expect_failures = [aws_sns_topic_subscription.pushgate]
}

run "rejects_empty_kms_key" {
  command = plan

  variables {
    kms_master_key_id = ""
  }

  expect_failures = [var.kms_master_key_id]
}

run "rejects_bad_name_prefix" {
  command = plan

  variables {
    name_prefix = "bad name"
  }

  expect_failures = [var.name_prefix]
}
