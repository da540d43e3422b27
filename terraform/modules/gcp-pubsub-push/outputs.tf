output "service_account_email" {
  description = "Email of the push service account; pushgate's config.service_account_email."
  value       = google_service_account.push.email
}

output "audience" {
  description = "Audience of the push OIDC tokens; pushgate's config.audience."
  value       = local.audience
}

output "subscription" {
  description = "Full path of the push subscription (projects/P/subscriptions/S), for pushgate's config.subscriptions allow-list."
  value       = google_pubsub_subscription.push.id
}

output "topic" {
  description = "Full path of the pushed topic (projects/P/topics/T). The topic is created after the APIs (including extra_apis) are enabled, so resources that reference it wait for them too."
  value       = google_pubsub_topic.main.id
}

output "topic_name" {
  description = "Short name of the pushed topic, for google_pubsub_topic_iam_member.topic (publisher grants added by the calling module)."
  value       = google_pubsub_topic.main.name
}

output "dead_letter_topic" {
  description = "Full path of the dead-letter topic."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription" {
  description = "Full path of the pull subscription that keeps dead-lettered messages."
  value       = google_pubsub_subscription.dead_letter.id
}

output "heartbeat_interval_seconds" {
  description = "Heartbeat period in seconds; use as the connection's heartbeat_interval_seconds."
  value       = var.heartbeat_minutes * 60
}

output "pushgate_connection_config" {
  description = "The config object of pushgate's gcp_pubsub connection (contains no secrets)."
  value = {
    service_account_email = google_service_account.push.email
    audience              = local.audience
    subscriptions         = [google_pubsub_subscription.push.id]
  }
}
