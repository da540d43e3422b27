# Offline unit tests: mocked AWS provider, plan only.

mock_provider "aws" {
  override_during = plan

  mock_resource "aws_cloudwatch_event_connection" {
    defaults = {
      arn = "arn:aws:events:eu-west-1:123456789012:connection/pushgate-pushgate/c"
    }
  }

  mock_resource "aws_cloudwatch_event_api_destination" {
    defaults = {
      arn = "arn:aws:events:eu-west-1:123456789012:api-destination/pushgate-pushgate/d"
    }
  }

  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/pushgate-pushgate-invoke"
    }
  }

  mock_resource "aws_sqs_queue" {
    defaults = {
      arn = "arn:aws:sqs:eu-west-1:123456789012:pushgate-pushgate-dlq"
      id  = "https://sqs.eu-west-1.amazonaws.com/123456789012/pushgate-pushgate-dlq"
      url = "https://sqs.eu-west-1.amazonaws.com/123456789012/pushgate-pushgate-dlq"
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
    arn = "arn:aws:events:eu-west-1:123456789012:rule/pushgate-securityhub-findings-api"
  }
}

override_resource {
  target          = aws_cloudwatch_event_rule.heartbeat
  override_during = plan
  values = {
    arn = "arn:aws:events:eu-west-1:123456789012:rule/pushgate-securityhub-heartbeat-api"
  }
}

variables {
  push_url      = "https://pushgate.example.com/push/aws-eventbridge/4f9c2b1e-0000-4000-8000-000000000002"
  api_key_value = "0123456789abcdef0123456789abcdef"
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
    condition = jsondecode(aws_cloudwatch_event_rule.findings.event_pattern).detail.findings == {
      Severity    = { Label = ["CRITICAL", "HIGH"] }
      RecordState = ["ACTIVE"]
      Workflow    = { Status = ["NEW", "NOTIFIED"] }
    }
    error_message = "default applied filter"
  }

  assert {
    condition     = aws_cloudwatch_event_rule.heartbeat.schedule_expression == "rate(5 minutes)"
    error_message = "default heartbeat must be rate(5 minutes)"
  }

  assert {
    condition     = aws_cloudwatch_event_connection.pushgate.authorization_type == "API_KEY"
    error_message = "connection must use API_KEY"
  }

  assert {
    condition     = one(one(aws_cloudwatch_event_connection.pushgate.auth_parameters).api_key).key == "X-Api-Key"
    error_message = "default API key header must be X-Api-Key"
  }

  assert {
    condition     = aws_cloudwatch_event_api_destination.pushgate.invocation_endpoint == var.push_url
    error_message = "API destination must POST to the push URL"
  }

  assert {
    condition     = aws_cloudwatch_event_api_destination.pushgate.http_method == "POST"
    error_message = "API destination method must be POST"
  }

  assert {
    condition     = aws_cloudwatch_event_api_destination.pushgate.invocation_rate_limit_per_second == 20
    error_message = "default invocation rate must be 20/s"
  }

  assert {
    condition     = aws_cloudwatch_event_api_destination.pushgate.connection_arn == "arn:aws:events:eu-west-1:123456789012:connection/pushgate-pushgate/c"
    error_message = "API destination must use the connection"
  }

  assert {
    condition = alltrue([
      for t in [aws_cloudwatch_event_target.findings, aws_cloudwatch_event_target.heartbeat] :
      t.arn == "arn:aws:events:eu-west-1:123456789012:api-destination/pushgate-pushgate/d" && t.role_arn == "arn:aws:iam::123456789012:role/pushgate-pushgate-invoke"
    ])
    error_message = "both targets must be the API destination, invoked with the role"
  }

  assert {
    condition = alltrue([
      for t in [aws_cloudwatch_event_target.findings, aws_cloudwatch_event_target.heartbeat] :
      one(t.dead_letter_config).arn == "arn:aws:sqs:eu-west-1:123456789012:pushgate-pushgate-dlq"
    ])
    error_message = "both targets must dead-letter to the DLQ"
  }

  assert {
    condition = alltrue([
      for t in [aws_cloudwatch_event_target.findings, aws_cloudwatch_event_target.heartbeat] :
      one(t.retry_policy).maximum_event_age_in_seconds == 86400 && one(t.retry_policy).maximum_retry_attempts == 185
    ])
    error_message = "default retry policy must be 86400 s / 185 attempts"
  }

  assert {
    condition     = aws_cloudwatch_event_target.findings.rule == aws_cloudwatch_event_rule.findings.name && aws_cloudwatch_event_target.heartbeat.rule == aws_cloudwatch_event_rule.heartbeat.name
    error_message = "targets must belong to their rules"
  }

  assert {
    condition     = aws_sqs_queue.dlq.sqs_managed_sse_enabled == true && aws_sqs_queue.dlq.kms_master_key_id == null
    error_message = "DLQ must use SSE-SQS when no KMS key is given"
  }

  assert {
    condition     = aws_sqs_queue_policy.dlq.queue_url == "https://sqs.eu-west-1.amazonaws.com/123456789012/pushgate-pushgate-dlq"
    error_message = "queue policy must be attached to the DLQ"
  }

  assert {
    condition     = output.dlq_arn == "arn:aws:sqs:eu-west-1:123456789012:pushgate-pushgate-dlq" && output.dlq_url == "https://sqs.eu-west-1.amazonaws.com/123456789012/pushgate-pushgate-dlq"
    error_message = "DLQ outputs"
  }

  assert {
    condition     = output.api_destination_arn == "arn:aws:events:eu-west-1:123456789012:api-destination/pushgate-pushgate/d"
    error_message = "api_destination_arn output"
  }

  assert {
    condition     = output.findings_rule_arn == "arn:aws:events:eu-west-1:123456789012:rule/pushgate-securityhub-findings-api" && output.heartbeat_rule_arn == "arn:aws:events:eu-west-1:123456789012:rule/pushgate-securityhub-heartbeat-api"
    error_message = "rule ARN outputs"
  }

  assert {
    condition     = output.pushgate_connection_config.auth.type == "api_key" && output.pushgate_connection_config.auth.header == "X-Api-Key"
    error_message = "pushgate_connection_config must describe api_key auth"
  }

  assert {
    condition     = !strcontains(jsonencode(output.pushgate_connection_config), var.api_key_value)
    error_message = "pushgate_connection_config must not contain the secret"
  }

  assert {
    condition     = output.heartbeat_interval_seconds == 300
    error_message = "heartbeat_interval_seconds"
  }
}

run "least_privilege_policies" {
  command = plan

  # aws_iam_policy_document is mocked, so check the statements it is given.
  assert {
    condition     = one(data.aws_iam_policy_document.invoke.statement).actions == toset(["events:InvokeApiDestination"])
    error_message = "the role may only invoke API destinations"
  }

  assert {
    condition     = one(data.aws_iam_policy_document.invoke.statement).resources == toset(["arn:aws:events:eu-west-1:123456789012:api-destination/pushgate-pushgate/d"])
    error_message = "the role may only invoke this API destination"
  }

  assert {
    condition     = aws_iam_role_policy.invoke.role == aws_iam_role.invoke.id
    error_message = "the invoke policy must be attached to the role"
  }

  assert {
    condition = one(data.aws_iam_policy_document.assume.statement).principals == toset([{
      type        = "Service"
      identifiers = toset(["events.amazonaws.com"])
    }])
    error_message = "only events.amazonaws.com may assume the role"
  }

  assert {
    condition = one(data.aws_iam_policy_document.assume.statement).condition == toset([
      {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values = [
          "arn:aws:events:eu-west-1:123456789012:rule/pushgate-securityhub-findings-api",
          "arn:aws:events:eu-west-1:123456789012:rule/pushgate-securityhub-heartbeat-api",
        ]
      },
      {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = ["123456789012"]
      },
    ])
    error_message = "the trust policy must be scoped to the two rules and the account"
  }

  assert {
    condition = [for s in data.aws_iam_policy_document.dlq.statement : s if s.effect == "Allow"][0].condition == toset([{
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values = tolist([
        "arn:aws:events:eu-west-1:123456789012:rule/pushgate-securityhub-findings-api",
        "arn:aws:events:eu-west-1:123456789012:rule/pushgate-securityhub-heartbeat-api",
      ])
    }])
    error_message = "only the two rules may send to the DLQ"
  }

  assert {
    condition     = [for s in data.aws_iam_policy_document.dlq.statement : s if s.effect == "Allow"][0].actions == toset(["sqs:SendMessage"])
    error_message = "the DLQ policy may only allow sqs:SendMessage"
  }

  assert {
    condition     = length([for s in data.aws_iam_policy_document.dlq.statement : s if s.effect == "Allow"]) == 1
    error_message = "the DLQ policy must have exactly one Allow statement"
  }
}

run "custom_values" {
  command = plan

  variables {
    api_key_header                   = "X-Pushgate-Key"
    invocation_rate_limit_per_second = 5
    severity_labels                  = []
    record_states                    = ["ACTIVE", "ARCHIVED"]
    workflow_statuses                = []
    heartbeat_minutes                = 1
    maximum_event_age_in_seconds     = 3600
    maximum_retry_attempts           = 10
    dlq_kms_master_key_id            = "alias/pushgate-dlq"
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.findings.event_pattern).detail.findings == { RecordState = ["ACTIVE", "ARCHIVED"] }
    error_message = "empty severity and workflow lists must be omitted from the pattern"
  }

  assert {
    condition     = aws_cloudwatch_event_rule.heartbeat.schedule_expression == "rate(1 minute)"
    error_message = "heartbeat_minutes = 1 must give rate(1 minute)"
  }

  assert {
    condition     = aws_cloudwatch_event_api_destination.pushgate.invocation_rate_limit_per_second == 5
    error_message = "invocation rate must follow the variable"
  }

  assert {
    condition     = one(one(aws_cloudwatch_event_connection.pushgate.auth_parameters).api_key).key == "X-Pushgate-Key"
    error_message = "header name must follow the variable"
  }

  assert {
    condition     = output.pushgate_connection_config.auth.header == "X-Pushgate-Key"
    error_message = "connection config header must follow the variable"
  }

  assert {
    condition = alltrue([
      for t in [aws_cloudwatch_event_target.findings, aws_cloudwatch_event_target.heartbeat] :
      one(t.retry_policy).maximum_event_age_in_seconds == 3600 && one(t.retry_policy).maximum_retry_attempts == 10
    ])
    error_message = "retry policy must follow the variables"
  }

  assert {
    condition     = aws_sqs_queue.dlq.kms_master_key_id == "alias/pushgate-dlq" && aws_sqs_queue.dlq.sqs_managed_sse_enabled != true
    error_message = "DLQ must use the given KMS key instead of SSE-SQS"
  }
}

run "no_filters" {
  command = plan

  variables {
    severity_labels   = []
    record_states     = []
    workflow_statuses = []
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.findings.event_pattern) == { source = ["aws.securityhub"], "detail-type" = ["Security Hub Findings - Imported"] }
    error_message = "with every filter empty the pattern must hold only source and detail-type"
  }
}

run "rejects_sns_push_url" {
  command = plan

  variables {
    push_url = "https://pushgate.example.com/push/aws-sns/4f9c2b1e-0000-4000-8000-000000000002"
  }

  expect_failures = [var.push_url]
}

run "rejects_http_push_url" {
  command = plan

  variables {
    push_url = "http://pushgate.example.com/push/aws-eventbridge/4f9c2b1e-0000-4000-8000-000000000002"
  }

  expect_failures = [var.push_url]
}

run "rejects_short_api_key" {
  command = plan

  variables {
    api_key_value = "short"
  }

  expect_failures = [var.api_key_value]
}

run "rejects_bad_header_name" {
  command = plan

  variables {
    api_key_header = "X Api Key"
  }

  expect_failures = [var.api_key_header]
}

run "rejects_rate_limit_zero" {
  command = plan

  variables {
    invocation_rate_limit_per_second = 0
  }

  expect_failures = [var.invocation_rate_limit_per_second]
}

run "rejects_rate_limit_too_high" {
  command = plan

  variables {
    invocation_rate_limit_per_second = 301
  }

  expect_failures = [var.invocation_rate_limit_per_second]
}

run "rejects_heartbeat_out_of_range" {
  command = plan

  variables {
    heartbeat_minutes = 1441
  }

  expect_failures = [var.heartbeat_minutes]
}

run "rejects_event_age_too_short" {
  command = plan

  variables {
    maximum_event_age_in_seconds = 59
  }

  expect_failures = [var.maximum_event_age_in_seconds]
}

run "rejects_too_many_retries" {
  command = plan

  variables {
    maximum_retry_attempts = 186
  }

  expect_failures = [var.maximum_retry_attempts]
}

run "rejects_unknown_severity" {
  command = plan

  variables {
    severity_labels = ["critical"]
  }

  expect_failures = [var.severity_labels]
}

run "rejects_bad_retention" {
  command = plan

  variables {
    dlq_message_retention_seconds = 1209601
  }

  expect_failures = [var.dlq_message_retention_seconds]
}

run "rejects_api_key_with_control_characters" {
  command = plan

  variables {
    api_key_value = "0123456789abcdef\n0123456789abcdef"
  }

  expect_failures = [var.api_key_value]
}
