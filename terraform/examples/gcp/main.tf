# Both GCP feeds into pushgate: SCC findings and Google Workspace alerts,
# each with its own topic, push service account, push subscription, DLQ and heartbeat.

locals {
  base_url = trimsuffix(var.pushgate_public_url, "/")

  scc_push_url       = "${local.base_url}/push/gcp-pubsub/${var.scc_connection_id}"
  workspace_push_url = "${local.base_url}/push/gcp-pubsub/${var.workspace_connection_id}"
}

module "scc" {
  source = "../../modules/gcp-scc-pubsub"

  project_id        = var.project_id
  organization_id   = var.organization_id
  region            = var.region
  push_url          = local.scc_push_url
  heartbeat_minutes = var.heartbeat_minutes
}

module "workspace" {
  source = "../../modules/gcp-workspace-alerts"

  project_id        = var.project_id
  region            = var.region
  push_url          = local.workspace_push_url
  heartbeat_minutes = var.heartbeat_minutes
}

locals {
  # POST /v1/connections bodies (no secrets: gcp_pubsub configs hold none).
  connection_bodies = {
    scc_findings = {
      tenant_id                  = var.pushgate_tenant_id
      name                       = "GCP SCC findings (${var.organization_id})"
      source                     = "gcp_pubsub"
      stream                     = var.scc_stream
      heartbeat_interval_seconds = var.heartbeat_minutes * 60
      grace_seconds              = var.grace_seconds
      config                     = module.scc.pushgate_connection_config
    }
    workspace_alerts = {
      tenant_id                  = var.pushgate_tenant_id
      name                       = "Google Workspace alerts (${var.project_id})"
      source                     = "gcp_pubsub"
      stream                     = var.workspace_stream
      heartbeat_interval_seconds = var.heartbeat_minutes * 60
      grace_seconds              = var.grace_seconds
      config                     = module.workspace.pushgate_connection_config
    }
  }
}
