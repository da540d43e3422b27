output "bucket_name" {
  description = "Name of the bucket (created here or existing)."
  value       = var.create_bucket ? aws_s3_bucket.this[0].id : var.bucket_name
}

output "bucket_arn" {
  description = "ARN of the bucket."
  value       = var.create_bucket ? aws_s3_bucket.this[0].arn : local.bucket_arn
}

output "objects_arn" {
  description = "The only resource pushgate may write: arn:aws:s3:::{bucket}/{prefix}/*."
  value       = local.objects_arn
}

output "policy_arn" {
  description = "ARN of the IAM policy granting s3:PutObject under the prefix (and kms:GenerateDataKey on kms_key_arn, if set); attach it to the identity pushgate runs as."
  value       = aws_iam_policy.put.arn
}

output "policy_json" {
  description = "The IAM policy document of policy_arn, for identities managed elsewhere."
  value       = data.aws_iam_policy_document.put.json
}

output "destination_config" {
  description = "The config object of a pushgate s3 destination (POST /v1/destinations, kind = \"s3\"): bucket, prefix and region; batch limits keep pushgate's defaults. Credentials come from the standard AWS chain of the pushgate process."
  value = {
    bucket = var.create_bucket ? aws_s3_bucket.this[0].id : var.bucket_name
    prefix = var.prefix
    region = data.aws_region.current.name
  }
}
