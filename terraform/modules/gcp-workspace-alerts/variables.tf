variable "project_id" {
  description = "ID of the GCP project that holds the Pub/Sub topics, the push subscription, the push service account and the Cloud Scheduler heartbeat job."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project ID: 6-30 characters, lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Cloud Scheduler location for the heartbeat job, e.g. \"europe-west1\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region name such as \"europe-west1\" or \"us-central1\"."
  }
}

variable "push_url" {
  description = "pushgate push URL of the gcp_pubsub connection: <PUSHGATE_PUBLIC_URL>/push/gcp-pubsub/<connection id>. Must be https (Pub/Sub only pushes OIDC tokens over TLS)."
  type        = string

  validation {
    condition     = startswith(var.push_url, "https://") && strcontains(var.push_url, "/push/gcp-pubsub/") && !endswith(var.push_url, "/push/gcp-pubsub/")
    error_message = "push_url must start with https:// and contain /push/gcp-pubsub/<connection id>."
  }
}

variable "audience" {
  description = "Audience (aud claim) of the OIDC token Pub/Sub attaches to each push. null means the push URL, which is also pushgate's default for the connection's config.audience."
  type        = string
  default     = null

  validation {
    condition     = var.audience == null || try(length(trimspace(var.audience)) > 0, false)
    error_message = "audience must be null (use the push URL) or a non-empty string."
  }
}

variable "topic_name" {
  description = "Name of the Pub/Sub topic the Google Workspace Alert Center publishes alerts to."
  type        = string
  default     = "pushgate-workspace-alerts"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9._~%+-]{2,254}$", var.topic_name)) && !startswith(lower(var.topic_name), "goog")
    error_message = "topic_name must be 3-255 characters, start with a letter, use only letters, digits and . _ ~ % + -, and not start with \"goog\"."
  }
}

variable "subscription_name" {
  description = "Name of the push subscription that delivers to pushgate."
  type        = string
  default     = "pushgate-workspace-push"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9._~%+-]{2,254}$", var.subscription_name)) && !startswith(lower(var.subscription_name), "goog")
    error_message = "subscription_name must be 3-255 characters, start with a letter, use only letters, digits and . _ ~ % + -, and not start with \"goog\"."
  }
}

variable "dead_letter_topic_name" {
  description = "Name of the dead-letter topic that receives messages pushgate did not acknowledge after max_delivery_attempts. A pull subscription named <name>-sub keeps them for inspection."
  type        = string
  default     = "pushgate-workspace-dead-letter"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9._~%+-]{2,250}$", var.dead_letter_topic_name)) && !startswith(lower(var.dead_letter_topic_name), "goog")
    error_message = "dead_letter_topic_name must be 3-251 characters, start with a letter, use only letters, digits and . _ ~ % + -, and not start with \"goog\"."
  }
}

variable "service_account_id" {
  description = "account_id of the service account whose identity Pub/Sub puts in the push OIDC token. Its email (<id>@<project>.iam.gserviceaccount.com) is the connection's config.service_account_email. The account gets no roles."
  type        = string
  default     = "pushgate-workspace-push"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.service_account_id))
    error_message = "service_account_id must be 6-30 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "ack_deadline_seconds" {
  description = "Seconds Pub/Sub waits for pushgate to answer a push before it counts the delivery as failed (10-600)."
  type        = number
  default     = 60

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600 && floor(var.ack_deadline_seconds) == var.ack_deadline_seconds
    error_message = "ack_deadline_seconds must be a whole number between 10 and 600."
  }
}

variable "message_retention_duration" {
  description = "How long the push subscription keeps unacknowledged messages, in seconds with an \"s\" suffix (600s-604800s). Covers pushgate outages up to this length."
  type        = string
  default     = "604800s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.message_retention_duration)) && try(tonumber(trimsuffix(var.message_retention_duration, "s")) >= 600 && tonumber(trimsuffix(var.message_retention_duration, "s")) <= 604800, false)
    error_message = "message_retention_duration must be between \"600s\" (10 minutes) and \"604800s\" (7 days)."
  }
}

variable "retry_minimum_backoff" {
  description = "Minimum delay before Pub/Sub redelivers a message pushgate refused or did not answer (retry_policy.minimum_backoff, 0s-600s)."
  type        = string
  default     = "10s"

  validation {
    condition     = can(regex("^[0-9]+(\\.[0-9]+)?s$", var.retry_minimum_backoff)) && try(tonumber(trimsuffix(var.retry_minimum_backoff, "s")) <= 600, false)
    error_message = "retry_minimum_backoff must be a duration in seconds such as \"10s\", at most \"600s\"."
  }
}

variable "retry_maximum_backoff" {
  description = "Maximum delay between redeliveries (retry_policy.maximum_backoff, 0s-600s, not below retry_minimum_backoff)."
  type        = string
  default     = "600s"

  validation {
    condition     = can(regex("^[0-9]+(\\.[0-9]+)?s$", var.retry_maximum_backoff)) && try(tonumber(trimsuffix(var.retry_maximum_backoff, "s")) <= 600, false)
    error_message = "retry_maximum_backoff must be a duration in seconds such as \"600s\", at most \"600s\"."
  }
}

variable "max_delivery_attempts" {
  description = "Delivery attempts before a message is moved to the dead-letter topic (5-100)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts
    error_message = "max_delivery_attempts must be a whole number between 5 and 100."
  }
}

variable "heartbeat_minutes" {
  description = "Minutes between heartbeat messages (attribute pushgate_kind=heartbeat) published by Cloud Scheduler (1-59; schedule */N * * * *). Set the connection's heartbeat_interval_seconds to heartbeat_minutes * 60. Values that do not divide 60 give one shorter gap each hour, never a longer one."
  type        = number
  default     = 5

  validation {
    condition     = var.heartbeat_minutes >= 1 && var.heartbeat_minutes <= 59 && floor(var.heartbeat_minutes) == var.heartbeat_minutes
    error_message = "heartbeat_minutes must be a whole number between 1 and 59."
  }
}

variable "heartbeat_job_name" {
  description = "Name of the Cloud Scheduler job that publishes heartbeats."
  type        = string
  default     = "pushgate-workspace-heartbeat"

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,500}$", var.heartbeat_job_name))
    error_message = "heartbeat_job_name may contain only letters, digits, hyphens and underscores."
  }
}

variable "kms_key_name" {
  description = "Optional Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) to encrypt both topics with a customer-managed key. null uses Google-managed encryption. When set, the Pub/Sub service agent is granted roles/cloudkms.cryptoKeyEncrypterDecrypter on that key."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be null or a full key name projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}

variable "enable_apis" {
  description = "Enable the Pub/Sub, Cloud Scheduler, IAM and Alert Center APIs in project_id. The APIs are never disabled on destroy."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels added to the topics and subscriptions."
  type        = map(string)
  default     = {}
}
