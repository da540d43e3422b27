# Google Workspace Alert Center alerts -> Pub/Sub topic -> authenticated push to pushgate.
#
#   Alert Center (alerts-api-push-notifications@system) ──publish──▶ topic ──push (OIDC, retry)──▶ pushgate /push/gcp-pubsub/{id}
#   Cloud Scheduler (every N min) ──publish pushgate_kind=heartbeat──▶ topic
#   undeliverable after max_delivery_attempts ──▶ dead-letter topic ──▶ pull subscription (inspection)
#
# The topic, push subscription, dead-letter queue, heartbeat, service agent grants,
# optional CMEK and API enabling live in ../gcp-pubsub-push; this module adds the
# publisher grant for Alert Center.
#
# The Alert Center notification setting itself (settings.notifications[].cloudPubsubTopic)
# has no Terraform resource; see the alert_center_settings_body output and README.md.

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
  service_account_display_name = "pushgate Workspace alerts push"
  ack_deadline_seconds         = var.ack_deadline_seconds
  message_retention_duration   = var.message_retention_duration
  retry_minimum_backoff        = var.retry_minimum_backoff
  retry_maximum_backoff        = var.retry_maximum_backoff
  max_delivery_attempts        = var.max_delivery_attempts
  heartbeat_minutes            = var.heartbeat_minutes
  heartbeat_job_name           = var.heartbeat_job_name
  kms_key_name                 = var.kms_key_name
  enable_apis                  = var.enable_apis
  extra_apis                   = ["alertcenter.googleapis.com"]
  labels                       = var.labels
}

# ---------------------------------------------------------------------------
# Google Workspace Alert Center publishes as this Google-owned system account.
# ---------------------------------------------------------------------------
resource "google_pubsub_topic_iam_member" "alerts_api_publisher" {
  project = var.project_id
  topic   = module.pubsub_push.topic_name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:alerts-api-push-notifications@system.gserviceaccount.com"
}
