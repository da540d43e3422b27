variable "project_id" {
  description = "GCP project that holds the topics, push subscriptions, push service accounts and heartbeat jobs."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project ID."
  }
}

variable "organization_id" {
  description = "Numeric GCP organization ID whose Security Command Center findings are exported."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{1,20}$", var.organization_id))
    error_message = "organization_id must be the numeric organization ID."
  }
}

variable "region" {
  description = "Region for the Cloud Scheduler heartbeat jobs."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region name such as europe-west1."
  }
}

variable "pushgate_public_url" {
  description = "pushgate's PUSHGATE_PUBLIC_URL (https, no trailing path), e.g. https://pushgate.example.com."
  type        = string

  validation {
    condition     = can(regex("^https://[^/?#]+(/[^?#]*)?$", var.pushgate_public_url))
    error_message = "pushgate_public_url must be an https:// URL without query or fragment."
  }
}

variable "pushgate_tenant_id" {
  description = "pushgate tenant_id the two connections belong to."
  type        = string

  validation {
    condition     = length(trimspace(var.pushgate_tenant_id)) > 0
    error_message = "pushgate_tenant_id must not be empty."
  }
}

variable "scc_connection_id" {
  description = "id (UUID) of the pushgate gcp_pubsub connection for SCC findings; the push URL is <pushgate_public_url>/push/gcp-pubsub/<id>."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.scc_connection_id))
    error_message = "scc_connection_id must be the UUID pushgate returned for the connection."
  }
}

variable "workspace_connection_id" {
  description = "id (UUID) of the pushgate gcp_pubsub connection for Google Workspace alerts."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.workspace_connection_id))
    error_message = "workspace_connection_id must be the UUID pushgate returned for the connection."
  }
}

variable "heartbeat_minutes" {
  description = "Minutes between Cloud Scheduler heartbeats on both topics (1-59)."
  type        = number
  default     = 5

  validation {
    condition     = var.heartbeat_minutes >= 1 && var.heartbeat_minutes <= 59 && floor(var.heartbeat_minutes) == var.heartbeat_minutes
    error_message = "heartbeat_minutes must be a whole number between 1 and 59."
  }
}

variable "grace_seconds" {
  description = "grace_seconds of both pushgate connections."
  type        = number
  default     = 60

  validation {
    condition     = var.grace_seconds >= 0 && floor(var.grace_seconds) == var.grace_seconds
    error_message = "grace_seconds must be a whole number >= 0."
  }
}

variable "scc_stream" {
  description = "pushgate stream (event table) for SCC findings."
  type        = string
  default     = "cloud_gcp_security_finding"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,63}$", var.scc_stream))
    error_message = "scc_stream must be 1-64 characters of a-z, 0-9 and _, starting with a letter."
  }
}

variable "workspace_stream" {
  description = "pushgate stream (event table) for Google Workspace alerts."
  type        = string
  default     = "cloud_google_workspace_alert"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,63}$", var.workspace_stream))
    error_message = "workspace_stream must be 1-64 characters of a-z, 0-9 and _, starting with a letter."
  }
}
