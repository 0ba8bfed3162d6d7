variable "name" {
  description = "The deployment's name: every resource's name starts with it (buckets too, so it must be unique in S3)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "The name is 3 to 32 lowercase letters, digits or hyphens."
  }
}

variable "environment" {
  description = "The environment (dev, staging, prod): a tag, and what `envs/*.tfvars` set apart."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment is dev, staging or prod."
  }
}

variable "region" {
  description = "The AWS region."
  type        = string
  default     = "us-east-1"
}

variable "lambda_dir" {
  description = "The folder of the Lambda zips, one per function named `{function}.zip` (`cargo lambda build --release --output-format zip` writes `target/lambda/{function}/bootstrap.zip`; the README shows how to gather them)."
  type        = string
  default     = "../target/lambda-zips"
}

variable "architecture" {
  description = "The instruction set the zips were built for."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture is x86_64 or arm64."
  }
}

variable "billing_mode" {
  description = "The tables' billing: PAY_PER_REQUEST or PROVISIONED."
  type        = string
  default     = "PAY_PER_REQUEST"
}

variable "ttl_days" {
  description = "Days a record stays in the hot store (DynamoDB TTL); the lake keeps everything."
  type        = number
  default     = 30

  validation {
    condition     = var.ttl_days >= 0
    error_message = "ttl_days is 0 (no expiry) or more."
  }
}

variable "report_days" {
  description = "Event days each scheduled report run covers (0: the whole lake). The run also writes the feature table for ML, whose windows need at least 36 days."
  type        = number
  default     = 90
  validation {
    condition     = var.report_days == 0 || var.report_days >= 36
    error_message = "report_days must be 0 (the whole lake) or at least 36: the reporter's feature table reads 28 days before its as-of day and a 7-day horizon after it."
  }
}

variable "report_hourly" {
  description = "Whether the reports also run hourly."
  type        = bool
  default     = false
}

variable "tiers" {
  description = "Usage-plan tiers (requests a second, burst, daily quota per app); null keeps the module's free/standard/high."
  type = map(object({
    rate_limit  = number
    burst_limit = number
    daily_quota = number
  }))
  default = null
}

variable "create_event_source_mappings" {
  description = "Whether SQS and the streams drive the writer and the exporter (off for the emulator run)."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "How long Lambda and API logs are kept."
  type        = number
  default     = 30
}

variable "alarm_emails" {
  description = "Addresses the alarms notify by email (each confirms its subscription); other channels subscribe to the `alarm_topic_arn` output."
  type        = list(string)
  default     = []
}

variable "metrics_apps" {
  description = "Apps that get their own `app` dimension on Cauce's item metrics (the first ones each Lambda sees; the rest are `other`). Each app × kind × metric is a CloudWatch custom metric (about US$0.30 a month each), so 0, one `all` value, is the default."
  type        = number
  default     = 0
}

variable "waf_rate_limit_per_ip" {
  description = "Requests one client address may make in any 5 minutes before WAF blocks it."
  type        = number
  default     = 20000
}

variable "shield_advanced" {
  description = "Protect `shield_resource_arns` with AWS Shield Advanced (US$3,000 a month, one-year commitment): off by default."
  type        = bool
  default     = false
}

variable "shield_resource_arns" {
  description = "With shield_advanced: the CloudFront distribution or Route 53 zone in front of the API (a regional REST API cannot be protected itself)."
  type        = list(string)
  default     = []
}

variable "admin_tier" {
  description = "The usage-plan tier that apps made through `POST /v1/admin/apps` join."
  type        = string
  default     = "standard"

  validation {
    condition     = contains(var.tiers == null ? ["free", "standard", "high"] : keys(var.tiers), var.admin_tier)
    error_message = "admin_tier must be one of the tiers."
  }
}

variable "team_sign_in" {
  description = "A Cognito user pool for the team (groups admin, developer, analyst), whose tokens the authorizer accepts on the read and admin routes beside app keys."
  type        = bool
  default     = true
}

variable "team_callback_urls" {
  description = "With team_sign_in: where the hosted sign-in page may send a person back (the dashboard's URL); empty, no hosted sign-in (the CLI uses SRP)."
  type        = list(string)
  default     = []
}

variable "team_domain_prefix" {
  description = "With team_sign_in: the hosted sign-in domain's prefix; null, none."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Whether destroy may delete buckets with objects in them and tables (which are otherwise deletion-protected): test environments only."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

variable "queue_visibility_timeout_s" {
  description = "How long a message the writer received stays hidden; a failed write comes back after it. At least 6 times the writer's timeout in production (AWS's advice for event source mappings)."
  type        = number
  default     = 300

  validation {
    condition     = var.queue_visibility_timeout_s >= 0 && var.queue_visibility_timeout_s <= 43200
    error_message = "An SQS visibility timeout is 0 to 43,200 seconds."
  }
}

variable "restrict_dlq_sources" {
  description = "Whether only the ingest queue may use its DLQ (a RedriveAllowPolicy). Off only for the moto server, which keeps no such policy."
  type        = bool
  default     = true
}

variable "group_buckets" {
  description = "Message groups per app in the FIFO queue. One user's order always holds; more groups let more writer invocations run at once for one app, fewer put more items in each SQS message (fewer requests to pay for)."
  type        = number
  default     = 16

  validation {
    condition     = var.group_buckets >= 1 && var.group_buckets <= 256 && floor(var.group_buckets) == var.group_buckets
    error_message = "group_buckets is a whole number from 1 to 256."
  }
}
