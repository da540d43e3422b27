# Entra application for pushgate's ms_graph connection, and the connection body.

module "graph_app" {
  source = "../../modules/azure-graph-app"

  graph_application_permissions = var.graph_application_permissions
  subscription_resource         = var.subscription_resource
  subscription_change_types     = var.subscription_change_types
  client_secret_end_date        = var.client_secret_end_date
  encryption_certificate_pem    = var.encryption_certificate_pem
}

locals {
  client_state_placeholder = "REPLACE_WITH_CLIENT_STATE"

  # Graph delivers no heartbeat: lifecycle notifications and subscription
  # expiry drive ms_graph health instead, so heartbeat_interval_seconds is null.
  connection_body_public = {
    tenant_id                  = var.pushgate_tenant_id
    name                       = var.connection_name
    source                     = "ms_graph"
    stream                     = "cloud_ms_graph_alert"
    heartbeat_interval_seconds = null
    config = merge(module.graph_app.pushgate_connection_config, {
      client_state = local.client_state_placeholder
    })
  }

  connection_body = merge(local.connection_body_public, {
    config = merge(local.connection_body_public.config, {
      client_state = coalesce(var.client_state, local.client_state_placeholder)
      subscription = merge(module.graph_app.pushgate_connection_config.subscription, {
        client_secret = module.graph_app.client_secret
      })
    })
  })
}
