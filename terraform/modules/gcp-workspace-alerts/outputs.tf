output "service_account_email" {
  description = "Email of the push service account; pushgate's config.service_account_email."
  value       = module.pubsub_push.service_account_email
}

output "audience" {
  description = "Audience of the push OIDC tokens; pushgate's config.audience."
  value       = module.pubsub_push.audience
}

output "subscription" {
  description = "Full path of the push subscription (projects/P/subscriptions/S), for pushgate's config.subscriptions allow-list."
  value       = module.pubsub_push.subscription
}

output "topic" {
  description = "Full path of the alerts topic (projects/P/topics/T)."
  value       = module.pubsub_push.topic
}

output "dead_letter_topic" {
  description = "Full path of the dead-letter topic."
  value       = module.pubsub_push.dead_letter_topic
}

output "dead_letter_subscription" {
  description = "Full path of the pull subscription that keeps dead-lettered messages."
  value       = module.pubsub_push.dead_letter_subscription
}

output "heartbeat_interval_seconds" {
  description = "Heartbeat period in seconds; use as the connection's heartbeat_interval_seconds."
  value       = module.pubsub_push.heartbeat_interval_seconds
}

output "pushgate_connection_config" {
  description = "The config object of pushgate's gcp_pubsub connection (contains no secrets)."
  value       = module.pubsub_push.pushgate_connection_config
}

output "alert_center_settings_body" {
  description = "JSON body for PATCH https://alertcenter.googleapis.com/v1beta1/settings that points the Workspace Alert Center at the topic (no Terraform resource exists for it; see README.md)."
  value = jsonencode({
    notifications = [{
      cloudPubsubTopic = {
        topicName     = module.pubsub_push.topic
        payloadFormat = "JSON"
      }
    }]
  })
}
