# Security Command Center findings -> Pub/Sub topic -> authenticated push to pushgate.
#
#   SCC notification config ──publish──▶ topic ──push (OIDC, retry)──▶ pushgate /push/gcp-pubsub/{id}
#   Cloud Scheduler (every N min) ──publish pushgate_kind=heartbeat──▶ topic
#   undeliverable after max_delivery_attempts ──▶ dead-letter topic ──▶ pull subscription (inspection)
#
# The topic, push subscription, dead-letter queue, heartbeat, service agent grants,
# optional CMEK and API enabling live in ../gcp-pubsub-push; this module adds the SCC
# notification config and SCC's publisher grant.

module "pubsub_push" {
  source = "../gcp-pubsub-push"

  project_id                   = var.project_id
  region                       = var.region
  push_url                     = var.push_url
  audience                     = var.audience
  topic_name                   = var.topic_name
  subscription_name            = var.subscription_name
  dead_letter_topic_name       = var.dead_letter_topic_name
  service_account_id           = var.service_account_id
  service_account_display_name = "pushgate SCC push"
  ack_deadline_seconds         = var.ack_deadline_seconds
  message_retention_duration   = var.message_retention_duration
  retry_minimum_backoff        = var.retry_minimum_backoff
  retry_maximum_backoff        = var.retry_maximum_backoff
  max_delivery_attempts        = var.max_delivery_attempts
  heartbeat_minutes            = var.heartbeat_minutes
  heartbeat_job_name           = var.heartbeat_job_name
  kms_key_name                 = var.kms_key_name
  enable_apis                  = var.enable_apis
  extra_apis                   = ["securitycenter.googleapis.com"]
  labels                       = var.labels
}

# ---------------------------------------------------------------------------
# Security Command Center: stream matching findings to the topic
# ---------------------------------------------------------------------------
resource "google_scc_notification_config" "findings" {
  config_id    = var.scc_notification_config_id
  organization = var.organization_id
  description  = "Export SCC findings to pushgate"
  # The topic is created after the APIs (securitycenter included) are enabled, so
  # referencing it also orders this after API enabling.
  pubsub_topic = module.pubsub_push.topic

  streaming_config {
    filter = var.scc_filter
  }
}

# SCC grants this itself when the caller may set the topic's IAM policy; the
# explicit, non-authoritative grant keeps it in state and survives policy resets.
resource "google_pubsub_topic_iam_member" "scc_publisher" {
  project = var.project_id
  topic   = module.pubsub_push.topic_name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_scc_notification_config.findings.service_account}"
}
