# Internal module: the public wrappers (gcp-scc-pubsub, gcp-workspace-alerts) declare the
# same inputs with their defaults and validations and pass them through unchanged, so
# they are not validated a second time here.

variable "project_id" {
  description = "ID of the GCP project that holds the Pub/Sub topics, the push subscription, the push service account and the Cloud Scheduler heartbeat job."
  type        = string
}

variable "region" {
  description = "Cloud Scheduler location for the heartbeat job, e.g. \"europe-west1\"."
  type        = string
}

variable "push_url" {
  description = "pushgate push URL of the gcp_pubsub connection: <PUSHGATE_PUBLIC_URL>/push/gcp-pubsub/<connection id> (https)."
  type        = string
}

variable "audience" {
  description = "Audience (aud claim) of the OIDC token Pub/Sub attaches to each push. null means the push URL, which is also pushgate's default for the connection's config.audience."
  type        = string
  default     = null
}

variable "topic_name" {
  description = "Name of the Pub/Sub topic that is pushed to pushgate (the publisher is added by the calling module)."
  type        = string
}

variable "subscription_name" {
  description = "Name of the push subscription that delivers to pushgate."
  type        = string
}

variable "dead_letter_topic_name" {
  description = "Name of the dead-letter topic that receives messages pushgate did not acknowledge after max_delivery_attempts. A pull subscription named <name>-sub keeps them for inspection."
  type        = string
}

variable "service_account_id" {
  description = "account_id of the service account whose identity Pub/Sub puts in the push OIDC token. The account gets no roles."
  type        = string
}

variable "service_account_display_name" {
  description = "Display name of the push service account, e.g. \"pushgate SCC push\"."
  type        = string
}

variable "ack_deadline_seconds" {
  description = "Seconds Pub/Sub waits for pushgate to answer a push before it counts the delivery as failed (10-600)."
  type        = number
}

variable "message_retention_duration" {
  description = "How long the push subscription keeps unacknowledged messages, in seconds with an \"s\" suffix (600s-604800s)."
  type        = string
}

variable "retry_minimum_backoff" {
  description = "Minimum delay before Pub/Sub redelivers a message pushgate refused or did not answer (retry_policy.minimum_backoff). Checked not to exceed retry_maximum_backoff."
  type        = string
}

variable "retry_maximum_backoff" {
  description = "Maximum delay between redeliveries (retry_policy.maximum_backoff)."
  type        = string
}

variable "max_delivery_attempts" {
  description = "Delivery attempts before a message is moved to the dead-letter topic (5-100)."
  type        = number
}

variable "heartbeat_minutes" {
  description = "Minutes between heartbeat messages (attribute pushgate_kind=heartbeat) published by Cloud Scheduler (1-59; schedule */N * * * *)."
  type        = number
}

variable "heartbeat_job_name" {
  description = "Name of the Cloud Scheduler job that publishes heartbeats."
  type        = string
}

variable "kms_key_name" {
  description = "Optional Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) to encrypt both topics with a customer-managed key; the Pub/Sub service agent is granted roles/cloudkms.cryptoKeyEncrypterDecrypter on it. null uses Google-managed encryption."
  type        = string
  default     = null
}

variable "enable_apis" {
  description = "Enable the IAM, Pub/Sub and Cloud Scheduler APIs, plus extra_apis, in project_id. The APIs are never disabled on destroy."
  type        = bool
  default     = true
}

variable "extra_apis" {
  description = "Further APIs the calling module needs (e.g. securitycenter.googleapis.com), enabled with the others when enable_apis is true."
  type        = list(string)
  default     = []
}

variable "labels" {
  description = "Labels added to the topics and subscriptions."
  type        = map(string)
  default     = {}
}
