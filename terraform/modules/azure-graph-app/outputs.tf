output "client_id" {
  description = "Application (client) ID of the pushgate Entra application."
  value       = azuread_application.pushgate.client_id
}

output "tenant_id" {
  description = "Entra tenant ID the application lives in."
  value       = local.tenant_id
}

output "client_secret" {
  description = "Client secret for pushgate's config.subscription.client_secret. Sensitive: read it with terraform output -raw client_secret."
  value       = azuread_application_password.pushgate.value
  sensitive   = true
}

output "password_end_date" {
  description = "Expiry (RFC 3339) of the current application password, i.e. of client_secret; rotate before it."
  value       = azuread_application_password.pushgate.end_date
}

output "application_object_id" {
  description = "Object ID of the application registration."
  value       = azuread_application.pushgate.object_id
}

output "service_principal_object_id" {
  description = "Object ID of the application's service principal (holder of the Graph app role assignments)."
  value       = azuread_service_principal.pushgate.object_id
}

output "graph_application_permissions" {
  description = "Microsoft Graph application permissions granted with admin consent."
  value       = sort(tolist(local.graph_permissions))
}

output "encryption_certificate_id" {
  description = "encryptionCertificateId to use for rich notifications, and the id of the matching entry in config.encryption_keys; null when no certificate is attached."
  value       = var.encryption_certificate_pem == null ? null : var.encryption_certificate_id
}

output "encryption_certificate_key_id" {
  description = "Key ID of the certificate credential attached to the application; null when none."
  value       = one(azuread_application_certificate.encryption[*].key_id)
}

output "pushgate_connection_config" {
  description = "Non-secret part of the ms_graph connection config: tenant_ids, app_ids and the subscription upkeep object without client_secret. Add client_state, subscription.client_secret (output client_secret) and, for rich notifications, encryption_keys yourself."
  value = {
    tenant_ids = [local.tenant_id]
    app_ids    = [azuread_application.pushgate.client_id]
    subscription = {
      resource    = var.subscription_resource
      change_type = join(",", var.subscription_change_types)
      tenant_id   = local.tenant_id
      client_id   = azuread_application.pushgate.client_id
    }
  }
}
