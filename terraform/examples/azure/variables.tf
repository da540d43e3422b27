variable "azure_tenant_id" {
  description = "Entra tenant to create the application in; null uses the tenant of the current Azure credentials."
  type        = string
  default     = null

  validation {
    condition     = var.azure_tenant_id == null || can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.azure_tenant_id))
    error_message = "azure_tenant_id must be null or a tenant GUID."
  }
}

variable "pushgate_tenant_id" {
  description = "pushgate tenant_id the ms_graph connection belongs to."
  type        = string

  validation {
    condition     = length(trimspace(var.pushgate_tenant_id)) > 0
    error_message = "pushgate_tenant_id must not be empty."
  }
}

variable "connection_name" {
  description = "name of the pushgate connection."
  type        = string
  default     = "Microsoft Graph change notifications"

  validation {
    condition     = length(trimspace(var.connection_name)) > 0
    error_message = "connection_name must not be empty."
  }
}

variable "graph_application_permissions" {
  description = "Graph application permissions for the subscribed resource (see the azure-graph-app README)."
  type        = list(string)
  default     = ["User.Read.All", "Group.Read.All"]

  validation {
    condition     = length(var.graph_application_permissions) > 0
    error_message = "graph_application_permissions must not be empty."
  }
}

variable "subscription_resource" {
  description = "Graph resource pushgate keeps subscribed, e.g. users."
  type        = string
  default     = "users"

  validation {
    condition     = length(trimspace(var.subscription_resource)) > 0
    error_message = "subscription_resource must not be empty."
  }
}

variable "subscription_change_types" {
  description = "Change types of the Graph subscription."
  type        = list(string)
  default     = ["updated", "deleted"]

  validation {
    condition     = length(var.subscription_change_types) > 0
    error_message = "subscription_change_types must not be empty."
  }
}

variable "client_secret_end_date" {
  description = "Expiry of the client secret (RFC 3339 UTC); null lets Entra choose."
  type        = string
  default     = null

  validation {
    condition     = var.client_secret_end_date == null || can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$", var.client_secret_end_date))
    error_message = "client_secret_end_date must be null or an RFC 3339 UTC timestamp."
  }
}

variable "encryption_certificate_pem" {
  description = "Optional public PEM certificate for rich notifications; null = none."
  type        = string
  default     = null

  validation {
    condition     = var.encryption_certificate_pem == null || try(strcontains(var.encryption_certificate_pem, "-----BEGIN CERTIFICATE-----"), false)
    error_message = "encryption_certificate_pem must be null or a PEM certificate."
  }
}

variable "client_state" {
  description = "Graph clientState shared secret (1-128 characters) for the connection. null leaves a placeholder in the output body that you must replace before POSTing it."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.client_state == null || try(length(var.client_state) >= 1 && length(var.client_state) <= 128, false)
    error_message = "client_state must be null or 1-128 characters."
  }
}
