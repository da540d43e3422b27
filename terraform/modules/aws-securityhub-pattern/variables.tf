variable "severity_labels" {
  description = "Security Hub severity labels to forward (detail.findings.Severity.Label); empty forwards every severity."
  type        = list(string)
}

variable "record_states" {
  description = "Finding record states to forward (detail.findings.RecordState); empty forwards every state."
  type        = list(string)
}

variable "workflow_statuses" {
  description = "Workflow statuses to forward (detail.findings.Workflow.Status); empty forwards every status."
  type        = list(string)
}

variable "heartbeat_minutes" {
  description = "Minutes between heartbeat events (validated by the calling module)."
  type        = number
}
