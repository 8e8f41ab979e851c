# Availability monitoring in production: New Relic Synthetics calls the status
# route every minute from several places, and alerts by e-mail when it fails
# or when the APM error rate climbs. docs/MONITORING.md explains the set-up.
#
#   export NEW_RELIC_API_KEY=NRAK-...   # a user key that may manage Synthetics and alerts
#   terraform init && terraform apply -var-file=production.tfvars
#
# The status token reaches New Relic as a secure credential: it is never in
# the script, and terraform marks it sensitive in every output.
terraform {
  required_version = ">= 1.5"
  required_providers {
    newrelic = {
      source  = "newrelic/newrelic"
      version = "~> 3.60"
    }
  }
}

provider "newrelic" {
  account_id = var.account_id
  region     = var.region
}
