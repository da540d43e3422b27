variable "region" {
  description = "AWS region whose Security Hub findings are forwarded (Security Hub findings are regional; use a finding aggregation region to cover all)."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "pushgate_url" {
  description = "Base URL at which AWS reaches pushgate (its PUSHGATE_PUBLIC_URL), e.g. https://pushgate.example.com. Must be https."
  type        = string

  validation {
    condition     = can(regex("^https://[^/?#\\s]+(/[^?#\\s]*)?$", var.pushgate_url)) && !strcontains(var.pushgate_url, "/push/")
    error_message = "pushgate_url must be an https:// base URL (no query, no /push/ path); push URLs are built from it."
  }
}

variable "tenant_id" {
  description = "pushgate tenant the two connections belong to."
  type        = string

  validation {
    condition     = length(trimspace(var.tenant_id)) > 0 && length(var.tenant_id) <= 128
    error_message = "tenant_id must be a non-empty string of at most 128 characters."
  }
}

variable "sns_connection_id" {
  description = "Id (UUID) of the pushgate aws_sns connection, from its POST /v1/connections answer. Null (first apply) skips the SNS module; the connection bodies are output either way."
  type        = string
  default     = null

  validation {
    condition     = var.sns_connection_id == null || can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.sns_connection_id))
    error_message = "sns_connection_id must be null or a UUID."
  }
}

variable "eventbridge_connection_id" {
  description = "Id (UUID) of the pushgate aws_eventbridge connection, from its POST /v1/connections answer. Null (first apply) skips the EventBridge module; the connection bodies are output either way."
  type        = string
  default     = null

  validation {
    condition     = var.eventbridge_connection_id == null || can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.eventbridge_connection_id))
    error_message = "eventbridge_connection_id must be null or a UUID."
  }
}

variable "api_key_header" {
  description = "Header carrying the API key from EventBridge to pushgate."
  type        = string
  default     = "X-Api-Key"
}

variable "api_key_value" {
  description = "API key EventBridge sends to pushgate; the same secret goes in the aws_eventbridge connection's config.auth.value. Required when eventbridge_connection_id is set. Pass it through TF_VAR_api_key_value, not a committed file."
  type        = string
  default     = null
  sensitive   = true
}

variable "name_prefix" {
  description = "Prefix of every AWS resource name."
  type        = string
  default     = "pushgate"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,32}$", var.name_prefix))
    error_message = "name_prefix must be 1-32 characters of letters, digits, '-' or '_'."
  }
}

variable "connection_name" {
  description = "Base of the pushgate connection names; the feed type, account and region are appended."
  type        = string
  default     = "AWS Security Hub"
}

variable "heartbeat_minutes" {
  description = "Minutes between heartbeats for both feeds; the connection bodies use heartbeat_minutes * 60 as heartbeat_interval_seconds."
  type        = number
  default     = 5

  validation {
    condition     = var.heartbeat_minutes >= 1 && var.heartbeat_minutes <= 1440 && floor(var.heartbeat_minutes) == var.heartbeat_minutes
    error_message = "heartbeat_minutes must be a whole number from 1 to 1440."
  }
}

variable "grace_seconds" {
  description = "grace_seconds of the pushgate connections: slack before a late heartbeat counts as missing."
  type        = number
  default     = 60

  validation {
    condition     = var.grace_seconds >= 0 && floor(var.grace_seconds) == var.grace_seconds
    error_message = "grace_seconds must be a whole number of at least 0."
  }
}

variable "severity_labels" {
  description = "Applied filter for both feeds: Security Hub severity labels forwarded. Empty = all."
  type        = list(string)
  default     = ["CRITICAL", "HIGH"]
}

variable "record_states" {
  description = "Applied filter for both feeds: finding record states forwarded. Empty = all."
  type        = list(string)
  default     = ["ACTIVE"]
}

variable "workflow_statuses" {
  description = "Applied filter for both feeds: finding workflow statuses forwarded. Empty = all."
  type        = list(string)
  default     = ["NEW", "NOTIFIED"]
}

variable "archive_bucket_name" {
  description = "Name of a bucket to create for an s3 destination archiving this tenant's events (see modules/aws-s3-destination for the naming rules). Null: no bucket, no destination body."
  type        = string
  default     = null
}

variable "archive_prefix" {
  description = "Key prefix of the archive in the bucket (the destination's config.prefix), without leading or trailing '/'."
  type        = string
  default     = "pushgate"
}

variable "archive_retention_days" {
  description = "Days the archive keeps objects before the bucket's lifecycle rule deletes them."
  type        = number
  default     = 365
}

variable "archive_kms_key_arn" {
  description = "KMS key ARN for SSE-KMS of the archive bucket; null = SSE-S3."
  type        = string
  default     = null
}

variable "pushgate_role_name" {
  description = "Name of the IAM role pushgate runs as; the archive's PutObject policy is attached to it. Null: attach archive_policy_arn yourself."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags applied to every taggable resource."
  type        = map(string)
  default     = { "managed-by" = "terraform", "app" = "pushgate" }
}
