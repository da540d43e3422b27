# Offline unit tests: mocked AWS provider, plan only.

mock_provider "aws" {
  override_during = plan

  mock_resource "aws_s3_bucket" {
    defaults = {
      id  = "acme-pushgate-events"
      arn = "arn:aws:s3:::acme-pushgate-events"
    }
  }

  mock_resource "aws_iam_policy" {
    defaults = {
      arn = "arn:aws:iam::123456789012:policy/pushgate-s3-put-acme-pushgate-events"
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

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{}"
    }
  }
}

# The real provider, configured so that it never calls AWS: it renders the policy documents
# as AWS receives them, so the grant can be checked in its final JSON form.
provider "aws" {
  alias                       = "offline"
  region                      = "eu-west-1"
  access_key                  = "offline"
  secret_key                  = "offline"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}

variables {
  bucket_name = "acme-pushgate-events"
}

run "defaults" {
  command = plan

  assert {
    condition     = aws_s3_bucket.this[0].bucket == "acme-pushgate-events" && aws_s3_bucket.this[0].force_destroy == false
    error_message = "the bucket must be created with the given name and not be force-destroyable"
  }

  assert {
    condition = (
      one(one(aws_s3_bucket_server_side_encryption_configuration.this[0].rule).apply_server_side_encryption_by_default).sse_algorithm == "AES256"
      && one(one(aws_s3_bucket_server_side_encryption_configuration.this[0].rule).apply_server_side_encryption_by_default).kms_master_key_id == null
    )
    error_message = "default encryption must be SSE-S3 (AES256) without a KMS key"
  }

  assert {
    condition     = one(aws_s3_bucket_versioning.this[0].versioning_configuration).status == "Disabled"
    error_message = "versioning must be off (Disabled), never Enabled"
  }

  assert {
    condition = (
      aws_s3_bucket_public_access_block.this[0].block_public_acls
      && aws_s3_bucket_public_access_block.this[0].block_public_policy
      && aws_s3_bucket_public_access_block.this[0].ignore_public_acls
      && aws_s3_bucket_public_access_block.this[0].restrict_public_buckets
    )
    error_message = "all four public access block settings must be true"
  }

  assert {
    condition     = one(aws_s3_bucket_ownership_controls.this[0].rule).object_ownership == "BucketOwnerEnforced"
    error_message = "object ownership must be BucketOwnerEnforced (ACLs disabled)"
  }

  assert {
    condition     = [for r in aws_s3_bucket_lifecycle_configuration.this[0].rule : r.id] == ["pushgate-retention", "abort-incomplete-multipart-uploads"]
    error_message = "the lifecycle configuration must hold exactly the retention rule and the multipart clean-up rule"
  }

  assert {
    condition     = alltrue([for r in aws_s3_bucket_lifecycle_configuration.this[0].rule : r.status == "Enabled"])
    error_message = "both lifecycle rules must be enabled"
  }

  assert {
    condition     = one(aws_s3_bucket_lifecycle_configuration.this[0].rule[0].filter).prefix == "pushgate/"
    error_message = "the retention rule must apply to the prefix only (pushgate/)"
  }

  assert {
    condition     = one(aws_s3_bucket_lifecycle_configuration.this[0].rule[0].expiration).days == 365
    error_message = "objects must expire after retention_days (default 365)"
  }

  assert {
    condition     = length(aws_s3_bucket_lifecycle_configuration.this[0].rule[1].expiration) == 0
    error_message = "nothing outside the prefix may expire"
  }

  assert {
    condition     = one(aws_s3_bucket_lifecycle_configuration.this[0].rule[1].abort_incomplete_multipart_upload).days_after_initiation == 7
    error_message = "incomplete multipart uploads must be aborted (default after 7 days)"
  }

  assert {
    condition = alltrue([
      for r in [
        aws_s3_bucket_server_side_encryption_configuration.this[0].bucket,
        aws_s3_bucket_versioning.this[0].bucket,
        aws_s3_bucket_public_access_block.this[0].bucket,
        aws_s3_bucket_ownership_controls.this[0].bucket,
        aws_s3_bucket_lifecycle_configuration.this[0].bucket,
        aws_s3_bucket_policy.this[0].bucket,
      ] : r == "acme-pushgate-events"
    ])
    error_message = "every bucket setting must apply to the bucket"
  }

  assert {
    condition     = aws_iam_policy.put.name == "pushgate-s3-put-acme-pushgate-events"
    error_message = "policy name"
  }

  assert {
    condition     = length(aws_iam_role_policy_attachment.put) == 0
    error_message = "without role_name the policy must not be attached"
  }

  assert {
    condition     = output.destination_config == { bucket = "acme-pushgate-events", prefix = "pushgate", region = "eu-west-1" }
    error_message = "destination_config must be exactly {bucket, prefix, region}"
  }

  assert {
    condition     = output.bucket_name == "acme-pushgate-events" && output.bucket_arn == "arn:aws:s3:::acme-pushgate-events"
    error_message = "bucket outputs"
  }

  assert {
    condition     = output.policy_arn == "arn:aws:iam::123456789012:policy/pushgate-s3-put-acme-pushgate-events"
    error_message = "policy_arn output"
  }

  assert {
    condition     = output.objects_arn == "arn:aws:s3:::acme-pushgate-events/pushgate/*"
    error_message = "objects_arn output"
  }
}

run "least_privilege_policy" {
  command = plan

  # aws_iam_policy_document is mocked, so check the statements it is given.
  assert {
    condition     = length(data.aws_iam_policy_document.put.statement) == 1
    error_message = "without a KMS key the policy must have exactly one statement"
  }

  assert {
    condition     = data.aws_iam_policy_document.put.statement[0].effect == "Allow"
    error_message = "the statement must be an Allow"
  }

  assert {
    condition     = data.aws_iam_policy_document.put.statement[0].actions == toset(["s3:PutObject"])
    error_message = "only s3:PutObject may be granted (no GetObject, ListBucket, DeleteObject, wildcards)"
  }

  assert {
    condition     = data.aws_iam_policy_document.put.statement[0].resources == toset(["arn:aws:s3:::acme-pushgate-events/pushgate/*"])
    error_message = "s3:PutObject must be granted on exactly bucket/prefix/*"
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.put.statement :
      length(coalesce(s.not_actions, [])) == 0 && length(coalesce(s.not_resources, [])) == 0 && length(coalesce(s.principals, [])) == 0
    ])
    error_message = "no NotAction, NotResource or principals in the grant"
  }

  assert {
    condition     = aws_iam_policy.put.policy == data.aws_iam_policy_document.put.json && output.policy_json == data.aws_iam_policy_document.put.json
    error_message = "the IAM policy and policy_json must be the put document"
  }

  assert {
    condition     = aws_s3_bucket_policy.this[0].policy == data.aws_iam_policy_document.bucket.json
    error_message = "the bucket policy must be the TLS-only document"
  }

  assert {
    condition     = length(data.aws_iam_policy_document.bucket.statement) == 1
    error_message = "the bucket policy must hold only the TLS statement (it grants nothing)"
  }

  assert {
    condition     = data.aws_iam_policy_document.bucket.statement[0].effect == "Deny" && data.aws_iam_policy_document.bucket.statement[0].actions == toset(["s3:*"])
    error_message = "the bucket policy must deny every S3 action"
  }

  assert {
    condition     = data.aws_iam_policy_document.bucket.statement[0].resources == toset(["arn:aws:s3:::acme-pushgate-events", "arn:aws:s3:::acme-pushgate-events/*"])
    error_message = "the TLS deny must cover the bucket and all its objects"
  }

  assert {
    condition = data.aws_iam_policy_document.bucket.statement[0].condition == toset([{
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = tolist(["false"])
    }])
    error_message = "the deny must apply when aws:SecureTransport is false"
  }

  assert {
    condition = data.aws_iam_policy_document.bucket.statement[0].principals == toset([{
      type        = "*"
      identifiers = toset(["*"])
    }])
    error_message = "the TLS deny must apply to every principal"
  }
}

run "kms_key_and_role" {
  command = plan

  variables {
    kms_key_arn    = "arn:aws:kms:eu-west-1:123456789012:key/0b5e6a62-1111-4222-8333-444455556666"
    role_name      = "pushgate-task"
    prefix         = "lake/security/pushgate"
    retention_days = 90
  }

  assert {
    condition = one(one(aws_s3_bucket_server_side_encryption_configuration.this[0].rule).apply_server_side_encryption_by_default) == {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = "arn:aws:kms:eu-west-1:123456789012:key/0b5e6a62-1111-4222-8333-444455556666"
    }
    error_message = "with kms_key_arn the default encryption must be aws:kms with that key"
  }

  assert {
    condition     = one(aws_s3_bucket_server_side_encryption_configuration.this[0].rule).bucket_key_enabled == true
    error_message = "SSE-KMS must use an S3 Bucket Key"
  }

  assert {
    condition     = length(data.aws_iam_policy_document.put.statement) == 2
    error_message = "with a KMS key the policy must have the PutObject and the GenerateDataKey statements, nothing else"
  }

  assert {
    condition     = [for s in data.aws_iam_policy_document.put.statement : s.actions if s.sid == "PutPushgateObjects"][0] == toset(["s3:PutObject"])
    error_message = "S3 grant must still be s3:PutObject only"
  }

  assert {
    condition     = [for s in data.aws_iam_policy_document.put.statement : s.resources if s.sid == "PutPushgateObjects"][0] == toset(["arn:aws:s3:::acme-pushgate-events/lake/security/pushgate/*"])
    error_message = "s3:PutObject must be granted on exactly bucket/prefix/*"
  }

  assert {
    condition     = [for s in data.aws_iam_policy_document.put.statement : s.actions if s.sid == "EncryptPushgateObjects"][0] == toset(["kms:GenerateDataKey"])
    error_message = "the KMS grant must be kms:GenerateDataKey only"
  }

  assert {
    condition     = [for s in data.aws_iam_policy_document.put.statement : s.resources if s.sid == "EncryptPushgateObjects"][0] == toset(["arn:aws:kms:eu-west-1:123456789012:key/0b5e6a62-1111-4222-8333-444455556666"])
    error_message = "kms:GenerateDataKey must be granted on exactly the bucket key"
  }

  assert {
    condition = [for s in data.aws_iam_policy_document.put.statement : s.condition if s.sid == "EncryptPushgateObjects"][0] == toset([{
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = tolist(["s3.eu-west-1.amazonaws.com"])
    }])
    error_message = "the KMS grant must be usable only through S3 in the region"
  }

  assert {
    condition     = aws_iam_role_policy_attachment.put[0].role == "pushgate-task" && aws_iam_role_policy_attachment.put[0].policy_arn == "arn:aws:iam::123456789012:policy/pushgate-s3-put-acme-pushgate-events"
    error_message = "the policy must be attached to role_name"
  }

  assert {
    condition     = one(aws_s3_bucket_lifecycle_configuration.this[0].rule[0].filter).prefix == "lake/security/pushgate/"
    error_message = "the retention rule must follow the prefix"
  }

  assert {
    condition     = one(aws_s3_bucket_lifecycle_configuration.this[0].rule[0].expiration).days == 90
    error_message = "expiration must follow retention_days"
  }

  assert {
    condition     = output.destination_config.prefix == "lake/security/pushgate"
    error_message = "destination_config.prefix must be the prefix as pushgate takes it (no slashes at the ends)"
  }
}

run "existing_bucket" {
  command = plan

  variables {
    create_bucket = false
    bucket_name   = "existing-lake"
  }

  assert {
    condition = (
      length(aws_s3_bucket.this) == 0
      && length(aws_s3_bucket_server_side_encryption_configuration.this) == 0
      && length(aws_s3_bucket_versioning.this) == 0
      && length(aws_s3_bucket_public_access_block.this) == 0
      && length(aws_s3_bucket_ownership_controls.this) == 0
      && length(aws_s3_bucket_lifecycle_configuration.this) == 0
      && length(aws_s3_bucket_policy.this) == 0
    )
    error_message = "with create_bucket = false no bucket or bucket setting may be managed"
  }

  assert {
    condition     = data.aws_iam_policy_document.put.statement[0].resources == toset(["arn:aws:s3:::existing-lake/pushgate/*"])
    error_message = "the grant must name the existing bucket"
  }

  assert {
    condition     = output.bucket_name == "existing-lake" && output.bucket_arn == "arn:aws:s3:::existing-lake"
    error_message = "outputs must name the existing bucket"
  }

  assert {
    condition     = output.destination_config == { bucket = "existing-lake", prefix = "pushgate", region = "eu-west-1" }
    error_message = "destination_config for an existing bucket"
  }
}

run "rejects_uppercase_bucket" {
  command = plan

  variables {
    bucket_name = "Acme-Events"
  }

  expect_failures = [var.bucket_name]
}

run "rejects_dotted_bucket" {
  command = plan

  variables {
    bucket_name = "acme.events"
  }

  expect_failures = [var.bucket_name]
}

run "rejects_short_bucket" {
  command = plan

  variables {
    bucket_name = "ab"
  }

  expect_failures = [var.bucket_name]
}

run "rejects_bucket_ending_in_dash" {
  command = plan

  variables {
    bucket_name = "acme-events-"
  }

  expect_failures = [var.bucket_name]
}

run "rejects_reserved_bucket_suffix" {
  command = plan

  variables {
    bucket_name = "acme-events-s3alias"
  }

  expect_failures = [var.bucket_name]
}

run "rejects_prefix_with_leading_slash" {
  command = plan

  variables {
    prefix = "/pushgate"
  }

  expect_failures = [var.prefix]
}

run "rejects_prefix_with_trailing_slash" {
  command = plan

  variables {
    prefix = "pushgate/"
  }

  expect_failures = [var.prefix]
}

run "rejects_empty_prefix" {
  command = plan

  variables {
    prefix = ""
  }

  expect_failures = [var.prefix]
}

run "rejects_prefix_with_empty_name" {
  command = plan

  variables {
    prefix = "lake//pushgate"
  }

  expect_failures = [var.prefix]
}

run "rejects_prefix_with_dot_dot" {
  command = plan

  variables {
    prefix = "lake/../pushgate"
  }

  expect_failures = [var.prefix]
}

run "rejects_wildcard_prefix" {
  command = plan

  variables {
    prefix = "push*"
  }

  expect_failures = [var.prefix]
}

run "rejects_policy_variable_in_prefix" {
  command = plan

  variables {
    prefix = "$${aws:username}"
  }

  expect_failures = [var.prefix]
}

run "rejects_retention_zero" {
  command = plan

  variables {
    retention_days = 0
  }

  expect_failures = [var.retention_days]
}

run "rejects_fractional_retention" {
  command = plan

  variables {
    retention_days = 1.5
  }

  expect_failures = [var.retention_days]
}

run "rejects_kms_alias" {
  command = plan

  variables {
    kms_key_arn = "alias/pushgate"
  }

  expect_failures = [var.kms_key_arn]
}

run "rejects_role_arn_as_role_name" {
  command = plan

  variables {
    role_name = "arn:aws:iam::123456789012:role/pushgate"
  }

  expect_failures = [var.role_name]
}

run "rendered_policies" {
  command = plan

  providers = {
    aws = aws.offline
  }

  assert {
    condition = jsondecode(output.policy_json) == {
      Version = "2012-10-17"
      Statement = [{
        Sid      = "PutPushgateObjects"
        Effect   = "Allow"
        Action   = "s3:PutObject"
        Resource = "arn:aws:s3:::acme-pushgate-events/pushgate/*"
      }]
    }
    error_message = "the rendered IAM policy must grant exactly s3:PutObject on bucket/prefix/*, nothing else"
  }

  assert {
    condition     = jsondecode(aws_iam_policy.put.policy) == jsondecode(output.policy_json)
    error_message = "the IAM policy must be the rendered document"
  }

  assert {
    condition = jsondecode(aws_s3_bucket_policy.this[0].policy) == {
      Version = "2012-10-17"
      Statement = [{
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = ["arn:aws:s3:::acme-pushgate-events/*", "arn:aws:s3:::acme-pushgate-events"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      }]
    }
    error_message = "the rendered bucket policy must only deny requests without TLS"
  }
}

run "rendered_policies_with_kms" {
  command = plan

  providers = {
    aws = aws.offline
  }

  variables {
    kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/0b5e6a62-1111-4222-8333-444455556666"
  }

  assert {
    condition = jsondecode(output.policy_json) == {
      Version = "2012-10-17"
      Statement = [
        {
          Sid      = "PutPushgateObjects"
          Effect   = "Allow"
          Action   = "s3:PutObject"
          Resource = "arn:aws:s3:::acme-pushgate-events/pushgate/*"
        },
        {
          Sid       = "EncryptPushgateObjects"
          Effect    = "Allow"
          Action    = "kms:GenerateDataKey"
          Resource  = "arn:aws:kms:eu-west-1:123456789012:key/0b5e6a62-1111-4222-8333-444455556666"
          Condition = { StringEquals = { "kms:ViaService" = "s3.eu-west-1.amazonaws.com" } }
        },
      ]
    }
    error_message = "the rendered IAM policy must grant exactly s3:PutObject on bucket/prefix/* and kms:GenerateDataKey on the key through S3"
  }
}
