output "client_id" {
  description = "Application (client) ID of the pushgate Entra application."
  value       = module.graph_app.client_id
}

output "tenant_id" {
  description = "Entra tenant ID."
  value       = module.graph_app.tenant_id
}

output "client_secret" {
  description = "Client secret of the application (sensitive)."
  value       = module.graph_app.client_secret
  sensitive   = true
}

output "pushgate_connection_body" {
  description = "JSON body for POST /v1/connections including config.subscription.client_secret (sensitive). If client_state was not set, replace REPLACE_WITH_CLIENT_STATE with a random secret of at most 128 characters first. Use: terraform output -raw pushgate_connection_body"
  value       = jsonencode(local.connection_body)
  sensitive   = true
}

output "pushgate_connection_body_redacted" {
  description = "The same body without secrets: client_state is the placeholder and config.subscription has no client_secret (pushgate rejects a subscription object without it, so add it or drop subscription). For review and documentation."
  value       = jsonencode(local.connection_body_public)
}
