# Offline tests of the example root module: mocked AWS provider, plan only.

mock_provider "aws" {
  override_during = plan

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }

  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }

  mock_data "aws_region" {
    defaults = {
      name = "eu-west-1"
    }
  }

  mock_resource "aws_s3_bucket" {
    defaults = {
      id  = "acme-pushgate-archive"
      arn = "arn:aws:s3:::acme-pushgate-archive"
    }
  }

  mock_resource "aws_iam_policy" {
    defaults = {
      arn = "arn:aws:iam::123456789012:policy/pushgate-s3-put-acme-pushgate-archive"
    }
  }

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{}"
    }
  }

  mock_resource "aws_sns_topic" {
    defaults = {
      arn = "arn:aws:sns:eu-west-1:123456789012:pushgate-securityhub-findings"
    }
  }

  mock_resource "aws_cloudwatch_event_rule" {
    defaults = {
      arn = "arn:aws:events:eu-west-1:123456789012:rule/r"
    }
  }

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
}

variables {
  region       = "eu-west-1"
  pushgate_url = "https://pushgate.example.com/"
  tenant_id    = "acme"
}

run "bootstrap_outputs_bodies_without_ids" {
  command = plan

  assert {
    condition     = length(module.securityhub_sns) == 0 && length(module.securityhub_eventbridge) == 0
    error_message = "without connection ids no AWS resources are planned"
  }

  assert {
    condition = jsondecode(output.pushgate_connection_bodies).aws_sns == {
      tenant_id                  = "acme"
      name                       = "AWS Security Hub (SNS, 123456789012 eu-west-1)"
      source                     = "aws_sns"
      stream                     = "cloud_aws_securityhub_alert"
      heartbeat_interval_seconds = 300
      grace_seconds              = 60
      config = {
        topic_arns   = ["arn:aws:sns:eu-west-1:123456789012:pushgate-securityhub-findings"]
        auto_confirm = true
      }
    }
    error_message = "aws_sns connection body"
  }

  assert {
    condition = jsondecode(output.pushgate_connection_bodies).aws_eventbridge == {
      tenant_id                  = "acme"
      name                       = "AWS Security Hub (EventBridge, 123456789012 eu-west-1)"
      source                     = "aws_eventbridge"
      stream                     = "cloud_aws_securityhub_alert"
      heartbeat_interval_seconds = 300
      grace_seconds              = 60
      config = {
        auth = {
          type   = "api_key"
          header = "X-Api-Key"
          value  = "<set the same secret as api_key_value>"
        }
      }
    }
    error_message = "aws_eventbridge connection body"
  }

  assert {
    condition     = output.sns_push_url == null && output.eventbridge_push_url == null
    error_message = "no push URLs before the connections exist"
  }

  assert {
    condition     = length(module.event_archive) == 0 && output.pushgate_destination_body == null && output.archive_policy_arn == null
    error_message = "without archive_bucket_name there is no bucket and no destination body"
  }
}

run "archive_bucket_and_destination_body" {
  command = plan

  variables {
    archive_bucket_name    = "acme-pushgate-archive"
    archive_prefix         = "lake/pushgate"
    archive_retention_days = 90
    pushgate_role_name     = "pushgate"
  }

  assert {
    condition     = length(module.event_archive) == 1 && length(module.securityhub_sns) == 0 && length(module.securityhub_eventbridge) == 0
    error_message = "the archive is independent of the feeds"
  }

  assert {
    condition = jsondecode(output.pushgate_destination_body) == {
      name       = "AWS Security Hub archive (s3://acme-pushgate-archive/lake/pushgate)"
      kind       = "s3"
      filter     = { tenant_ids = ["acme"] }
      start_from = "earliest"
      config = {
        bucket = "acme-pushgate-archive"
        prefix = "lake/pushgate"
        region = "eu-west-1"
      }
    }
    error_message = "s3 destination body"
  }

  assert {
    condition     = jsondecode(output.pushgate_destination_body).config == module.event_archive[0].destination_config
    error_message = "the body's config must be the module's destination_config"
  }

  assert {
    condition     = module.event_archive[0].objects_arn == "arn:aws:s3:::acme-pushgate-archive/lake/pushgate/*"
    error_message = "pushgate's grant must cover exactly the archive prefix"
  }

  assert {
    condition     = output.archive_policy_arn == "arn:aws:iam::123456789012:policy/pushgate-s3-put-acme-pushgate-archive"
    error_message = "archive_policy_arn output"
  }
}

run "deploys_both_modules" {
  command = plan

  variables {
    sns_connection_id         = "4f9c2b1e-0000-4000-8000-000000000001"
    eventbridge_connection_id = "4f9c2b1e-0000-4000-8000-000000000002"
    api_key_value             = "s3cr3t-api-key-0123456789abcdef"
  }

  assert {
    condition     = output.sns_push_url == "https://pushgate.example.com/push/aws-sns/4f9c2b1e-0000-4000-8000-000000000001"
    error_message = "SNS push URL must be built from pushgate_url and the connection id"
  }

  assert {
    condition     = output.eventbridge_push_url == "https://pushgate.example.com/push/aws-eventbridge/4f9c2b1e-0000-4000-8000-000000000002"
    error_message = "EventBridge push URL must be built from pushgate_url and the connection id"
  }

  assert {
    condition     = length(module.securityhub_sns) == 1 && length(module.securityhub_eventbridge) == 1
    error_message = "both modules must be deployed"
  }

  assert {
    condition     = module.securityhub_sns[0].topic_arn == output.sns_topic_arn
    error_message = "the topic ARN must be the one announced in the aws_sns body"
  }

  assert {
    condition     = module.securityhub_sns[0].pushgate_topic_arns == jsondecode(output.pushgate_connection_bodies).aws_sns.config.topic_arns
    error_message = "body topic_arns must equal the module's pushgate_topic_arns"
  }

  assert {
    condition     = module.securityhub_eventbridge[0].pushgate_connection_config == jsondecode(output.pushgate_connection_bodies).aws_eventbridge.config
    error_message = "body config must equal the EventBridge module's pushgate_connection_config"
  }

  assert {
    condition     = module.securityhub_sns[0].heartbeat_schedule_expression == "rate(5 minutes)" && module.securityhub_eventbridge[0].heartbeat_schedule_expression == "rate(5 minutes)"
    error_message = "both heartbeats must be rate(5 minutes)"
  }

  assert {
    condition     = jsondecode(module.securityhub_sns[0].findings_event_pattern).detail.findings.Severity.Label == ["CRITICAL", "HIGH"]
    error_message = "applied filter must reach the SNS module"
  }

  assert {
    condition     = !strcontains(output.pushgate_connection_bodies, var.api_key_value)
    error_message = "the connection bodies must not contain the API key"
  }

  assert {
    condition     = output.eventbridge_dlq_url == "https://sqs.eu-west-1.amazonaws.com/123456789012/pushgate-pushgate-dlq"
    error_message = "DLQ URL output"
  }
}

run "heartbeat_one_minute" {
  command = plan

  variables {
    sns_connection_id = "4f9c2b1e-0000-4000-8000-000000000001"
    heartbeat_minutes = 1
    grace_seconds     = 30
  }

  assert {
    condition     = jsondecode(output.pushgate_connection_bodies).aws_sns.heartbeat_interval_seconds == 60 && jsondecode(output.pushgate_connection_bodies).aws_eventbridge.heartbeat_interval_seconds == 60
    error_message = "heartbeat_interval_seconds must be heartbeat_minutes * 60"
  }

  assert {
    condition     = jsondecode(output.pushgate_connection_bodies).aws_sns.grace_seconds == 30
    error_message = "grace_seconds must reach the body"
  }

  assert {
    condition     = module.securityhub_sns[0].heartbeat_schedule_expression == "rate(1 minute)"
    error_message = "heartbeat_minutes = 1 must give rate(1 minute)"
  }

  assert {
    condition     = length(module.securityhub_eventbridge) == 0
    error_message = "the EventBridge feed is optional"
  }
}

run "rejects_http_pushgate_url" {
  command = plan

  variables {
    pushgate_url = "http://pushgate.example.com"
  }

  expect_failures = [var.pushgate_url]
}

run "rejects_push_url_as_base" {
  command = plan

  variables {
    pushgate_url = "https://pushgate.example.com/push/aws-sns/4f9c2b1e-0000-4000-8000-000000000001"
  }

  expect_failures = [var.pushgate_url]
}

run "rejects_non_uuid_sns_connection_id" {
  command = plan

  variables {
    sns_connection_id = "not-a-uuid"
  }

  expect_failures = [var.sns_connection_id]
}

run "rejects_non_uuid_eventbridge_connection_id" {
  command = plan

  variables {
    eventbridge_connection_id = "1234"
  }

  expect_failures = [var.eventbridge_connection_id]
}

run "rejects_heartbeat_zero" {
  command = plan

  variables {
    heartbeat_minutes = 0
  }

  expect_failures = [var.heartbeat_minutes]
}

run "rejects_empty_tenant" {
  command = plan

  variables {
    tenant_id = " "
  }

  expect_failures = [var.tenant_id]
}
