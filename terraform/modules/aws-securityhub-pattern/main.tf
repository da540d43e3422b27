# The Security Hub findings event pattern (the "applied filter") and the heartbeat
# schedule, shared by the SNS and API-destination modules. No resources, no provider.

locals {
  # Each list becomes a pattern field; an empty list omits the field (matching every
  # value) instead of matching nothing.
  findings_filter = {
    for k, v in {
      Severity    = length(var.severity_labels) > 0 ? { Label = var.severity_labels } : null
      RecordState = length(var.record_states) > 0 ? var.record_states : null
      Workflow    = length(var.workflow_statuses) > 0 ? { Status = var.workflow_statuses } : null
    } : k => v if v != null
  }

  findings_event_pattern = {
    for k, v in {
      source        = ["aws.securityhub"]
      "detail-type" = ["Security Hub Findings - Imported"]
      detail        = length(local.findings_filter) > 0 ? { findings = local.findings_filter } : null
    } : k => v if v != null
  }
}
