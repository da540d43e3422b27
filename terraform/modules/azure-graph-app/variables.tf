variable "display_name" {
  description = "Display name of the Entra application registration pushgate uses to create and renew Microsoft Graph change-notification subscriptions."
  type        = string
  default     = "pushgate-graph"

  validation {
    condition     = length(trimspace(var.display_name)) > 0 && length(var.display_name) <= 120
    error_message = "display_name must be 1-120 characters."
  }
}

variable "owners" {
  description = "Object IDs of additional owners of the application and service principal. The identity running Terraform is always an owner."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.owners : can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", o))])
    error_message = "owners must be object IDs (GUIDs)."
  }
}

variable "graph_application_permissions" {
  description = "Microsoft Graph application permissions (app role values) granted with admin consent. Each subscribed resource needs its own permission: users -> User.Read.All, groups -> Group.Read.All, messages (mail) -> Mail.Read, events -> Calendars.Read, Teams channel messages -> ChannelMessage.Read.All, Teams chats -> Chat.Read.All (see the permissions section of each Graph subscription resource). Keep only what the subscription(s) need."
  type        = list(string)
  default     = ["User.Read.All", "Group.Read.All"]

  validation {
    condition     = length(var.graph_application_permissions) > 0 && alltrue([for p in var.graph_application_permissions : can(regex("^[A-Za-z]+(\\.[A-Za-z]+)+$", p))])
    error_message = "graph_application_permissions must be a non-empty list of Graph app role values such as \"User.Read.All\"."
  }

  validation {
    condition     = length(setintersection(toset(var.graph_application_permissions), toset(["Directory.ReadWrite.All", "RoleManagement.ReadWrite.Directory", "AppRoleAssignment.ReadWrite.All", "Application.ReadWrite.All", "Application.ReadWrite.OwnedBy"]))) == 0
    error_message = "pushgate only reads; write permissions that allow privilege escalation (Directory.ReadWrite.All, RoleManagement.ReadWrite.Directory, AppRoleAssignment.ReadWrite.All, Application.ReadWrite.*) are refused."
  }
}

variable "subscription_resource" {
  description = "Graph resource pushgate subscribes to (config.subscription.resource), e.g. \"users\", \"groups\", \"users/{id}/messages\", \"teams/getAllMessages\". Security alerts cannot be subscribed to (the legacy security/alerts resource is retired; see the README's Microsoft Defender XDR alerts). Its permission must be in graph_application_permissions."
  type        = string
  default     = "users"

  validation {
    condition     = length(trimspace(var.subscription_resource)) > 0 && !startswith(var.subscription_resource, "/") && !startswith(var.subscription_resource, "https://")
    error_message = "subscription_resource must be a relative Graph resource path such as \"users\" (no leading slash, no host)."
  }
}

variable "subscription_change_types" {
  description = "Change types for the Graph subscription (config.subscription.change_type, joined with commas)."
  type        = list(string)
  default     = ["updated", "deleted"]

  validation {
    condition     = length(var.subscription_change_types) > 0 && alltrue([for c in var.subscription_change_types : contains(["created", "updated", "deleted"], c)])
    error_message = "subscription_change_types must be a non-empty list of created, updated, deleted."
  }
}

variable "client_secret_end_date" {
  description = "Expiry of the client secret as an RFC 3339 UTC timestamp (e.g. \"2026-12-31T00:00:00Z\"). null lets Entra choose (2 years). Rotate before this date."
  type        = string
  default     = null

  validation {
    condition     = var.client_secret_end_date == null || can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$", var.client_secret_end_date))
    error_message = "client_secret_end_date must be null or an RFC 3339 UTC timestamp such as 2026-12-31T00:00:00Z."
  }
}

variable "client_secret_rotation" {
  description = "Rotation key for the client secret: change it (e.g. to the current date) to create a new secret; the new one is created before the old one is removed. Update pushgate's config.subscription.client_secret afterwards."
  type        = string
  default     = "1"

  validation {
    condition     = length(var.client_secret_rotation) > 0
    error_message = "client_secret_rotation must not be empty."
  }
}

variable "encryption_certificate_pem" {
  description = "Optional PEM X.509 certificate (public part only) for Graph rich notifications (resource data encryption). null = none. When set it is attached to the application as an AsymmetricX509Cert key credential; the matching private key goes into pushgate's config.encryption_keys, never into Terraform."
  type        = string
  default     = null

  validation {
    condition     = var.encryption_certificate_pem == null || (try(strcontains(var.encryption_certificate_pem, "-----BEGIN CERTIFICATE-----"), false) && !try(strcontains(var.encryption_certificate_pem, "PRIVATE KEY"), false))
    error_message = "encryption_certificate_pem must be null or a PEM certificate (-----BEGIN CERTIFICATE-----) without any private key."
  }
}

variable "encryption_certificate_id" {
  description = "Identifier pushgate uses for the encryption certificate (Graph encryptionCertificateId, and the id in config.encryption_keys)."
  type        = string
  default     = "pushgate-1"

  validation {
    condition     = length(var.encryption_certificate_id) > 0 && length(var.encryption_certificate_id) <= 128
    error_message = "encryption_certificate_id must be 1-128 characters."
  }
}
