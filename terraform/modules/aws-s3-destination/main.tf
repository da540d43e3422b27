data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  # Known before the bucket exists (and when it is not ours), so the grant is exact at plan time.
  bucket_arn = "arn:${data.aws_partition.current.partition}:s3:::${var.bucket_name}"
  # pushgate writes {prefix}/tenant_id=.../stream=.../date=.../{destination}-{batch}.ndjson.gz
  objects_arn = "${local.bucket_arn}/${var.prefix}/*"
  bucket      = var.create_bucket ? 1 : 0
}

# --------------------------------------------------------------------- bucket

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:Server access logs need a second bucket whose layout is the operator's; pushgate's own destination status and counters record every write. Enable logging on the bucket from your logging setup if you need it.
  #checkov:skip=CKV_AWS_144:Cross-region replication needs a replica bucket, a role and versioning (which this bucket keeps off); the data is a copy of pushgate's, which can replay it.
  #checkov:skip=CKV2_AWS_62:Nothing consumes event notifications of this bucket; readers list or query the partitioned keys.
  #checkov:skip=CKV_AWS_21:Versioning is off on purpose: pushgate writes each object once, with If-None-Match: *, under a key unique to its batch, so there is no older version to keep, and expiry stays a real delete.
  #checkov:skip=CKV_AWS_145:SSE-S3 is the default so the module works without a KMS key; SSE-KMS is opt-in through var.kms_key_arn.
  count = local.bucket

  bucket        = var.bucket_name
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  count  = local.bucket
  bucket = aws_s3_bucket.this[count.index].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    # One data key per bucket instead of one KMS call per object (ignored with SSE-S3).
    bucket_key_enabled = var.kms_key_arn != null
  }
}

# "Disabled" leaves a new bucket unversioned (the provider makes no call); it is never
# "Enabled" (see the CKV_AWS_21 note above).
resource "aws_s3_bucket_versioning" "this" {
  count  = local.bucket
  bucket = aws_s3_bucket.this[count.index].id

  versioning_configuration {
    status = "Disabled"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  count  = local.bucket
  bucket = aws_s3_bucket.this[count.index].id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# ACLs off: every object belongs to the bucket owner, whoever wrote it.
resource "aws_s3_bucket_ownership_controls" "this" {
  count  = local.bucket
  bucket = aws_s3_bucket.this[count.index].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  count  = local.bucket
  bucket = aws_s3_bucket.this[count.index].id

  rule {
    id     = "pushgate-retention"
    status = "Enabled"

    filter {
      prefix = "${var.prefix}/"
    }

    expiration {
      days = var.retention_days
    }
  }

  # Bucket-wide: parts of an upload that never completed are billed but unreadable.
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_upload_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [local.bucket_arn, "${local.bucket_arn}/*"]

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

resource "aws_s3_bucket_policy" "this" {
  count  = local.bucket
  bucket = aws_s3_bucket.this[count.index].id
  policy = data.aws_iam_policy_document.bucket.json

  # A policy put before the block is in place could be refused while it is evaluated.
  depends_on = [aws_s3_bucket_public_access_block.this, aws_s3_bucket_ownership_controls.this]
}

# ------------------------------------------------------------ pushgate's grant

# pushgate only ever PUTs new objects (conditional PUT, If-None-Match: *): no read, no list,
# no delete, nothing on the bucket itself.
data "aws_iam_policy_document" "put" {
  statement {
    sid       = "PutPushgateObjects"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = [local.objects_arn]
  }

  # SSE-KMS: S3 asks KMS for a data key on the writer's behalf. A single PUT needs only
  # kms:GenerateDataKey (kms:Decrypt is for multipart uploads, which pushgate does not make).
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "EncryptPushgateObjects"
      effect    = "Allow"
      actions   = ["kms:GenerateDataKey"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${data.aws_region.current.name}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_policy" "put" {
  name        = "${var.name_prefix}-s3-put-${var.bucket_name}"
  description = "pushgate s3 destination: PutObject under s3://${var.bucket_name}/${var.prefix}/ only."
  policy      = data.aws_iam_policy_document.put.json
  tags        = var.tags
}

resource "aws_iam_role_policy_attachment" "put" {
  count      = var.role_name == null ? 0 : 1
  role       = var.role_name
  policy_arn = aws_iam_policy.put.arn
}
