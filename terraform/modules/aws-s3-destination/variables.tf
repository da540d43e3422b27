variable "bucket_name" {
  description = "Name of the bucket pushgate writes to (the destination's config.bucket). S3 naming rules, and no dots: a dotted name cannot be reached over HTTPS with virtual-hosted-style addressing, and the bucket policy refuses plain HTTP."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.bucket_name)) && !startswith(var.bucket_name, "xn--") && !startswith(var.bucket_name, "sthree-") && !endswith(var.bucket_name, "-s3alias") && !endswith(var.bucket_name, "--ol-s3") && !endswith(var.bucket_name, "--x-s3")
    error_message = "bucket_name must be 3-63 characters of a-z, 0-9 and '-', start and end with a letter or digit, contain no '.', and not start with xn-- or sthree- nor end with -s3alias, --ol-s3 or --x-s3."
  }
}

variable "create_bucket" {
  description = "true: create the bucket with its encryption, versioning, public access block, ownership, lifecycle and TLS-only policy. false: use an existing bucket of that name and create only the IAM policy; the bucket's own settings stay its owner's (they are whole-bucket settings this module would otherwise overwrite)."
  type        = bool
  default     = true
  nullable    = false
}

variable "prefix" {
  description = "Key prefix pushgate writes under (the destination's config.prefix): objects go to {prefix}/tenant_id=.../stream=.../date=.../*.ndjson.gz. '/'-separated names of letters, digits, '.', '_', '=' and '-', without leading or trailing '/'."
  type        = string
  default     = "pushgate"
  nullable    = false

  validation {
    condition     = length(var.prefix) <= 512 && can(regex("^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*$", var.prefix)) && alltrue([for part in split("/", var.prefix) : part != "." && part != ".."])
    error_message = "prefix must be 1-512 characters of '/'-separated names (letters, digits, '.', '_', '=', '-'; no '.' or '..' name), with no leading or trailing '/'. Wildcards ('*', '?') and '$' are refused: they would widen the IAM grant."
  }
}

variable "retention_days" {
  description = "Days after which the lifecycle rule deletes objects under the prefix (1-36500)."
  type        = number
  default     = 365
  nullable    = false

  validation {
    condition     = var.retention_days >= 1 && var.retention_days <= 36500 && floor(var.retention_days) == var.retention_days
    error_message = "retention_days must be a whole number from 1 to 36500."
  }
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which the lifecycle rule aborts incomplete multipart uploads under the prefix and frees their parts (1-365)."
  type        = number
  default     = 7
  nullable    = false

  validation {
    condition     = var.abort_incomplete_multipart_upload_days >= 1 && var.abort_incomplete_multipart_upload_days <= 365 && floor(var.abort_incomplete_multipart_upload_days) == var.abort_incomplete_multipart_upload_days
    error_message = "abort_incomplete_multipart_upload_days must be a whole number from 1 to 365."
  }
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key. Null: the bucket encrypts with SSE-S3 (AES256). Set: default encryption becomes aws:kms with this key (with an S3 Bucket Key) and the IAM policy also allows kms:GenerateDataKey on this key, through S3 only; the key policy must let the account's IAM policies grant it. With create_bucket = false, give the key the existing bucket encrypts with."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be null or a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>); an alias cannot be granted in an IAM policy."
  }
}

variable "role_name" {
  description = "Name of an existing IAM role pushgate runs as (instance profile, ECS task or IRSA role) to attach the policy to. Null: the policy is created but not attached."
  type        = string
  default     = null

  validation {
    condition     = var.role_name == null || can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.role_name))
    error_message = "role_name must be null or an IAM role name (1-64 of letters, digits and +=,.@_-), not an ARN."
  }
}

variable "name_prefix" {
  description = "Prefix of the IAM policy name ({name_prefix}-s3-put-{bucket_name}). Letters, digits, '-' and '_' only."
  type        = string
  default     = "pushgate"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,32}$", var.name_prefix))
    error_message = "name_prefix must be 1-32 characters of letters, digits, '-' or '_'."
  }
}

variable "force_destroy" {
  description = "Let terraform destroy delete the bucket while it still holds objects. Keep false for a bucket of security events."
  type        = bool
  default     = false
  nullable    = false
}

variable "tags" {
  description = "Tags applied to the bucket and the IAM policy."
  type        = map(string)
  default     = {}
}
