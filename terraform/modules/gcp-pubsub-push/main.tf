# Internal module: the delivery path shared by gcp-scc-pubsub and gcp-workspace-alerts.
#
#   <publisher, added by the calling module> ──publish──▶ topic ──push (OIDC, retry)──▶ pushgate /push/gcp-pubsub/{id}
#   Cloud Scheduler (every N min) ──publish pushgate_kind=heartbeat──▶ topic
#   undeliverable after max_delivery_attempts ──▶ dead-letter topic ──▶ pull subscription (inspection)
#
# The calling module validates the inputs and adds whatever publishes to the topic
# (and its publisher grant on outputs.topic_name).

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  audience = coalesce(var.audience, var.push_url)

  # Google-managed service agents (exist once the corresponding API is enabled).
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  apis = var.enable_apis ? toset(concat([
    "iam.googleapis.com",
    "pubsub.googleapis.com",
    "cloudscheduler.googleapis.com",
  ], var.extra_apis)) : toset([])

  labels = merge({ "managed-by" = "terraform", "pushgate-source" = "gcp-pubsub" }, var.labels)

  # Cloud Scheduler cron: minute field only; runs at every N-th minute of each hour.
  heartbeat_schedule = "*/${var.heartbeat_minutes} * * * *"
}

resource "google_project_service" "apis" {
  for_each = local.apis

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# ---------------------------------------------------------------------------
# Identity used in the push OIDC token. It needs no roles: pushgate only
# checks that the token is signed by Google for this email and audience.
# ---------------------------------------------------------------------------
resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = var.service_account_id
  display_name = var.service_account_display_name
  description  = "Identity in the OIDC token Pub/Sub sends with each push to pushgate (${var.push_url}). Holds no roles."

  depends_on = [google_project_service.apis]
}

# Pub/Sub mints the OIDC token for the push SA. Granted on this one service
# account only (not project-wide).
resource "google_service_account_iam_member" "pubsub_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# ---------------------------------------------------------------------------
# Optional CMEK: the Pub/Sub service agent must be able to use the key.
# ---------------------------------------------------------------------------
resource "google_kms_crypto_key_iam_member" "pubsub_cmek" {
  count = var.kms_key_name == null ? 0 : 1

  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = local.pubsub_service_agent
}

# ---------------------------------------------------------------------------
# Topics
# ---------------------------------------------------------------------------
resource "google_pubsub_topic" "main" {
  #checkov:skip=CKV_GCP_83:CMEK is opt-in through var.kms_key_name (wired below); without it Pub/Sub encrypts at rest with Google-managed keys, and requiring a KMS key would make the module unusable in projects without Cloud KMS.
  project      = var.project_id
  name         = var.topic_name
  kms_key_name = var.kms_key_name
  labels       = local.labels

  depends_on = [google_project_service.apis, google_kms_crypto_key_iam_member.pubsub_cmek]
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:CMEK is opt-in through var.kms_key_name (wired below); without it Pub/Sub encrypts at rest with Google-managed keys, and requiring a KMS key would make the module unusable in projects without Cloud KMS.
  project      = var.project_id
  name         = var.dead_letter_topic_name
  kms_key_name = var.kms_key_name
  labels       = local.labels

  depends_on = [google_project_service.apis, google_kms_crypto_key_iam_member.pubsub_cmek]
}

# Dead-lettered messages are forwarded by the Pub/Sub service agent.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

# A topic without subscriptions drops messages; keep dead letters for inspection.
resource "google_pubsub_subscription" "dead_letter" {
  project                    = var.project_id
  name                       = "${var.dead_letter_topic_name}-sub"
  topic                      = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  labels                     = local.labels

  expiration_policy {
    ttl = ""
  }
}

# ---------------------------------------------------------------------------
# Push subscription to pushgate
# ---------------------------------------------------------------------------
resource "google_pubsub_subscription" "push" {
  project                    = var.project_id
  name                       = var.subscription_name
  topic                      = google_pubsub_topic.main.id
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.message_retention_duration
  retain_acked_messages      = false
  labels                     = local.labels

  push_config {
    push_endpoint = var.push_url

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.audience
    }
  }

  retry_policy {
    minimum_backoff = var.retry_minimum_backoff
    maximum_backoff = var.retry_maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  # Never expire for inactivity (heartbeats keep it active anyway).
  expiration_policy {
    ttl = ""
  }

  lifecycle {
    precondition {
      condition     = tonumber(trimsuffix(var.retry_minimum_backoff, "s")) <= tonumber(trimsuffix(var.retry_maximum_backoff, "s"))
      error_message = "retry_minimum_backoff must not exceed retry_maximum_backoff."
    }
  }

  depends_on = [
    google_service_account_iam_member.pubsub_token_creator,
    google_pubsub_topic_iam_member.dead_letter_publisher,
  ]
}

# The Pub/Sub service agent acknowledges the messages it forwards to the dead-letter topic.
resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  project      = var.project_id
  subscription = google_pubsub_subscription.push.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# ---------------------------------------------------------------------------
# Heartbeat: Cloud Scheduler publishes pushgate_kind=heartbeat every N minutes
# (through the same topic and push subscription, so it proves the whole path).
# ---------------------------------------------------------------------------
resource "google_cloud_scheduler_job" "heartbeat" {
  project     = var.project_id
  region      = var.region
  name        = var.heartbeat_job_name
  description = "pushgate heartbeat for ${var.subscription_name} every ${var.heartbeat_minutes} min"
  schedule    = local.heartbeat_schedule
  time_zone   = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.main.id
    data = base64encode(jsonencode({
      pushgate_kind = "heartbeat"
      source        = "cloud-scheduler"
      job           = var.heartbeat_job_name
    }))
    attributes = {
      pushgate_kind = "heartbeat"
    }
  }

  depends_on = [google_project_service.apis]
}
