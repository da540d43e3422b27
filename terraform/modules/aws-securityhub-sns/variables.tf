variable "name_prefix" {
  description = "Prefix for every resource name (topic, rules). Letters, digits, '-' and '_' only."
  type        = string
  default     = "pushgate"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,40}$", var.name_prefix))
    error_message = "name_prefix must be 1-40 characters of letters, digits, '-' or '_'."
  }
}

variable "topic_name" {
  description = "Name of the SNS topic. Null means \"<name_prefix>-securityhub\". Knowing the name lets you predict the topic ARN (arn:<partition>:sns:<region>:<account>:<name>) before apply, for the pushgate connection's topic_arns."
  type        = string
  default     = null

  validation {
    condition     = var.topic_name == null || can(regex("^[A-Za-z0-9_-]{1,256}$", var.topic_name))
    error_message = "topic_name must be 1-256 characters of letters, digits, '-' or '_' (standard topics only, no .fifo)."
  }
}

variable "push_url" {
  description = "pushgate push URL of an aws_sns connection, e.g. https://pushgate.example.com/push/aws-sns/<connection id>. The connection must list this module's topic ARN in config.topic_arns before apply, or the subscription confirmation is refused."
  type        = string

  validation {
    condition     = startswith(var.push_url, "https://") && strcontains(var.push_url, "/push/aws-sns/")
    error_message = "push_url must start with https:// and contain /push/aws-sns/ (the push URL of a pushgate aws_sns connection)."
  }
}

variable "kms_master_key_id" {
  description = "KMS key (id, ARN or alias) for SNS server-side encryption. Null disables SSE. Must be a customer managed key whose key policy lets events.amazonaws.com use kms:GenerateDataKey* and kms:Decrypt; the AWS managed alias/aws/sns key cannot be used with EventBridge."
  type        = string
  default     = null

  validation {
    condition     = var.kms_master_key_id == null || try(length(trimspace(var.kms_master_key_id)) > 0, false)
    error_message = "kms_master_key_id must be null or a non-empty key id, ARN or alias."
  }
}

variable "signature_version" {
  description = "SNS message signature version: 1 (SHA1) or 2 (SHA256)."
  type        = number
  default     = 2

  validation {
    condition     = contains([1, 2], var.signature_version)
    error_message = "signature_version must be 1 or 2."
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

variable "delivery_num_retries" {
  description = "SNS HTTPS delivery policy: healthyRetryPolicy.numRetries (0-100)."
  type        = number
  default     = 10

  validation {
    condition     = var.delivery_num_retries >= 0 && var.delivery_num_retries <= 100 && floor(var.delivery_num_retries) == var.delivery_num_retries
    error_message = "delivery_num_retries must be a whole number from 0 to 100."
  }
}

variable "delivery_min_delay_seconds" {
  description = "SNS HTTPS delivery policy: healthyRetryPolicy.minDelayTarget in seconds (1-3600, not above delivery_max_delay_seconds)."
  type        = number
  default     = 5

  validation {
    condition     = var.delivery_min_delay_seconds >= 1 && var.delivery_min_delay_seconds <= 3600 && floor(var.delivery_min_delay_seconds) == var.delivery_min_delay_seconds
    error_message = "delivery_min_delay_seconds must be a whole number from 1 to 3600."
  }
}

variable "delivery_max_delay_seconds" {
  description = "SNS HTTPS delivery policy: healthyRetryPolicy.maxDelayTarget in seconds (1-3600, not below delivery_min_delay_seconds)."
  type        = number
  default     = 300

  validation {
    condition     = var.delivery_max_delay_seconds >= 1 && var.delivery_max_delay_seconds <= 3600 && floor(var.delivery_max_delay_seconds) == var.delivery_max_delay_seconds
    error_message = "delivery_max_delay_seconds must be a whole number from 1 to 3600."
  }
}

variable "delivery_backoff_function" {
  description = "SNS HTTPS delivery policy: healthyRetryPolicy.backoffFunction."
  type        = string
  default     = "exponential"

  validation {
    condition     = contains(["arithmetic", "exponential", "geometric", "linear"], var.delivery_backoff_function)
    error_message = "delivery_backoff_function must be arithmetic, exponential, geometric or linear."
  }
}

variable "delivery_max_receives_per_second" {
  description = "SNS HTTPS delivery policy: throttlePolicy.maxReceivesPerSecond, the most deliveries per second SNS sends to pushgate for this subscription."
  type        = number
  default     = 10

  validation {
    condition     = var.delivery_max_receives_per_second >= 1 && floor(var.delivery_max_receives_per_second) == var.delivery_max_receives_per_second
    error_message = "delivery_max_receives_per_second must be a whole number of at least 1."
  }
}

variable "confirmation_timeout_in_minutes" {
  description = "How long apply waits for pushgate to confirm the HTTPS subscription (endpoint_auto_confirms = true)."
  type        = number
  default     = 5

  validation {
    condition     = var.confirmation_timeout_in_minutes >= 1 && var.confirmation_timeout_in_minutes <= 60
    error_message = "confirmation_timeout_in_minutes must be from 1 to 60."
  }
}

variable "tags" {
  description = "Tags applied to every taggable resource."
  type        = map(string)
  default     = {}
}
