# Entra application that pushgate uses (client credentials) to create and renew
# Microsoft Graph change-notification subscriptions for an ms_graph connection.
#
#   azuread_application (+ required Graph app roles) ── service principal ── admin consent
#   client secret (rotatable) ── optional encryption certificate for rich notifications

data "azuread_client_config" "current" {}

# Microsoft Graph's service principal in this tenant: app role values -> ids.
data "azuread_service_principal" "msgraph" {
  client_id = "00000003-0000-0000-c000-000000000000"
}

locals {
  graph_permissions = toset(var.graph_application_permissions)
  owners            = distinct(concat([data.azuread_client_config.current.object_id], var.owners))
  tenant_id         = data.azuread_client_config.current.tenant_id
}

resource "azuread_application" "pushgate" {
  display_name     = var.display_name
  owners           = local.owners
  sign_in_audience = "AzureADMyOrg"
  notes            = "pushgate: creates and renews Microsoft Graph change-notification subscriptions (${var.subscription_resource})."

  required_resource_access {
    resource_app_id = data.azuread_service_principal.msgraph.client_id

    dynamic "resource_access" {
      for_each = local.graph_permissions
      content {
        id   = data.azuread_service_principal.msgraph.app_role_ids[resource_access.value]
        type = "Role"
      }
    }
  }

  lifecycle {
    precondition {
      condition     = alltrue([for p in local.graph_permissions : contains(keys(data.azuread_service_principal.msgraph.app_role_ids), p)])
      error_message = "Every entry of graph_application_permissions must be a Microsoft Graph application permission (app role value), e.g. User.Read.All."
    }
  }
}

resource "azuread_service_principal" "pushgate" {
  client_id                    = azuread_application.pushgate.client_id
  owners                       = local.owners
  app_role_assignment_required = true
}

# Admin consent: assign each Graph app role to pushgate's service principal.
resource "azuread_app_role_assignment" "graph" {
  for_each = local.graph_permissions

  app_role_id         = data.azuread_service_principal.msgraph.app_role_ids[each.value]
  principal_object_id = azuread_service_principal.pushgate.object_id
  resource_object_id  = data.azuread_service_principal.msgraph.object_id
}

# Client secret for pushgate's subscription upkeep (config.subscription.client_secret).
# Change var.client_secret_rotation to rotate; the new secret exists before the old one goes.
resource "azuread_application_password" "pushgate" {
  application_id = azuread_application.pushgate.id
  display_name   = "pushgate (rotation ${var.client_secret_rotation})"
  end_date       = var.client_secret_end_date

  rotate_when_changed = {
    rotation = var.client_secret_rotation
  }

  lifecycle {
    create_before_destroy = true
  }
}

# Optional public certificate for rich notifications (encrypted resource data).
resource "azuread_application_certificate" "encryption" {
  count = var.encryption_certificate_pem == null ? 0 : 1

  application_id = azuread_application.pushgate.id
  type           = "AsymmetricX509Cert"
  encoding       = "pem"
  value          = var.encryption_certificate_pem
}
