output "push_urls" {
  description = "Push URLs the two subscriptions deliver to."
  value = {
    scc_findings     = local.scc_push_url
    workspace_alerts = local.workspace_push_url
  }
}

output "pushgate_connection_bodies" {
  description = "JSON bodies for POST /v1/connections (or, without tenant_id and source, PATCH /v1/connections/{id}), keyed by feed. Use: terraform output -json pushgate_connection_bodies | jq -r .scc_findings"
  value       = { for feed, body in local.connection_bodies : feed => jsonencode(body) }
}

output "workspace_alert_center_settings_body" {
  description = "Body for PATCH https://alertcenter.googleapis.com/v1beta1/settings (Workspace admin, see the gcp-workspace-alerts README)."
  value       = module.workspace.alert_center_settings_body
}

output "dead_letter_subscriptions" {
  description = "Pull subscriptions holding messages pushgate did not accept after max_delivery_attempts."
  value = {
    scc_findings     = module.scc.dead_letter_subscription
    workspace_alerts = module.workspace.dead_letter_subscription
  }
}
