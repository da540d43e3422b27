terraform {
  required_version = ">= 1.7"

  required_providers {
    azuread = {
      source  = "hashicorp/azuread"
      version = ">= 2.47, < 4.0"
    }
  }
}

# Signs in with the Azure CLI (az login) or ARM_* environment variables.
provider "azuread" {
  tenant_id = var.azure_tenant_id
}
