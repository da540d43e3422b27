variable "name_prefix" {
  description = "Prefix for every resource name (connection, API destination, rules, role, queue). Letters, digits, '-' and '_' only."
  type        = string
  default     = "pushgate"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,32}$", var.name_prefix))
    error_message = "name_prefix must be 1-32 characters of letters, digits, '-' or '_'."
  }
}

variable "push_url" {
  description = "pushgate push URL of an aws_eventbridge connection, e.g. https://pushgate.example.com/push/aws-eventbridge/<connection id>."
  type        = string

  validation {
    condition     = startswith(var.push_url, "https://") && strcontains(var.push_url, "/push/aws-eventbridge/")
    error_message = "push_url must start with https:// and contain /push/aws-eventbridge/ (the push URL of a pushgate aws_eventbridge connection)."
  }
}

variable "api_key_header" {
  description = "HTTP header that carries the API key; the same value goes in the pushgate connection's config.auth.header."
  type        = string
  default     = "X-Api-Key"

  validation {
    condition     = can(regex("^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,512}$", var.api_key_header))
    error_message = "api_key_header must be a valid HTTP header name (RFC 9110 token, at most 512 characters)."
  }
}

variable "api_key_value" {
  description = "The API key EventBridge sends in api_key_header. Set the same secret as the pushgate connection's config.auth.value. Stored by EventBridge in AWS Secrets Manager; it is also kept in Terraform state, so protect the state."
  type        = string
  sensitive   = true
  nullable    = false

  validation {
    condition     = try(length(var.api_key_value) >= 16 && length(var.api_key_value) <= 512 && can(regex("^[^\\x00-\\x1F\\x7F]+$", var.api_key_value)), false)
    error_message = "api_key_value must be 16-512 printable characters (use a long random secret)."
  }
}

variable "invocation_rate_limit_per_second" {
  description = "Most requests per second EventBridge sends to pushgate through the API destination (1-300)."
  type        = number
  default     = 20

  validation {
    condition     = var.invocation_rate_limit_per_second >= 1 && var.invocation_rate_limit_per_second <= 300 && floor(var.invocation_rate_limit_per_second) == var.invocation_rate_limit_per_second
    error_message = "invocation_rate_limit_per_second must be a whole number from 1 to 300."
  }
}

variable "severity_labels" {
  description = "Applied filter: Security Hub severity labels forwarded (detail.findings.Severity.Label). Empty list = no severity filter."
  type        = list(string)
  default     = ["CRITICAL", "HIGH"]

  validation {
    condition     = alltrue([for s in var.severity_labels : contains(["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"], s)])
    error_message = "severity_labels may contain only INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL."
  }
}

variable "record_states" {
  description = "Applied filter: finding record states forwarded (detail.findings.RecordState). Empty list = no record state filter."
  type        = list(string)
  default     = ["ACTIVE"]

  validation {
    condition     = alltrue([for s in var.record_states : contains(["ACTIVE", "ARCHIVED"], s)])
    error_message = "record_states may contain only ACTIVE and ARCHIVED."
  }
}

variable "workflow_statuses" {
  description = "Applied filter: finding workflow statuses forwarded (detail.findings.Workflow.Status). Empty list = no workflow filter."
  type        = list(string)
  default     = ["NEW", "NOTIFIED"]

  validation {
    condition     = alltrue([for s in var.workflow_statuses : contains(["NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"], s)])
    error_message = "workflow_statuses may contain only NEW, NOTIFIED, RESOLVED, SUPPRESSED."
  }
}

variable "heartbeat_minutes" {
  description = "Minutes between heartbeats (an EventBridge schedule whose \"Scheduled Event\" pushgate counts as a heartbeat). Set the connection's heartbeat_interval_seconds to heartbeat_minutes * 60."
  type        = number
  default     = 5

  validation {
    condition     = var.heartbeat_minutes >= 1 && var.heartbeat_minutes <= 1440 && floor(var.heartbeat_minutes) == var.heartbeat_minutes
    error_message = "heartbeat_minutes must be a whole number from 1 to 1440."
  }
}

variable "maximum_event_age_in_seconds" {
  description = "Target retry policy: how long EventBridge keeps retrying an undelivered event before it goes to the dead-letter queue (60-86400)."
  type        = number
  default     = 86400

  validation {
    condition     = var.maximum_event_age_in_seconds >= 60 && var.maximum_event_age_in_seconds <= 86400 && floor(var.maximum_event_age_in_seconds) == var.maximum_event_age_in_seconds
    error_message = "maximum_event_age_in_seconds must be a whole number from 60 to 86400."
  }
}

variable "maximum_retry_attempts" {
  description = "Target retry policy: how many times EventBridge retries an event before it goes to the dead-letter queue (0-185)."
  type        = number
  default     = 185

  validation {
    condition     = var.maximum_retry_attempts >= 0 && var.maximum_retry_attempts <= 185 && floor(var.maximum_retry_attempts) == var.maximum_retry_attempts
    error_message = "maximum_retry_attempts must be a whole number from 0 to 185."
  }
}

variable "dlq_kms_master_key_id" {
  description = "KMS key for the dead-letter queue. Null uses SQS managed SSE (SSE-SQS). A customer managed key must let events.amazonaws.com use kms:GenerateDataKey* and kms:Decrypt."
  type        = string
  default     = null

  validation {
    condition     = var.dlq_kms_master_key_id == null || try(length(trimspace(var.dlq_kms_master_key_id)) > 0, false)
    error_message = "dlq_kms_master_key_id must be null or a non-empty key id, ARN or alias."
  }
}

variable "dlq_message_retention_seconds" {
  description = "How long undeliverable events stay in the dead-letter queue (60-1209600)."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600 && floor(var.dlq_message_retention_seconds) == var.dlq_message_retention_seconds
    error_message = "dlq_message_retention_seconds must be a whole number from 60 to 1209600."
  }
}

variable "tags" {
  description = "Tags applied to every taggable resource."
  type        = map(string)
  default     = {}
}
