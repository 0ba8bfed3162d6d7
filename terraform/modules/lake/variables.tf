variable "name" {
  description = "Name prefix of the buckets (`{name}-lake`, `{name}-raw`, `{name}-logs`), the Glue database and the Athena workgroup."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,40}[a-z0-9]$", var.name))
    error_message = "The name is 3 to 42 lowercase letters, digits or hyphens (S3 bucket rules)."
  }
}

variable "lake_prefix" {
  description = "Key prefix of the lake within its bucket (`CAUCE_LAKE` is `s3://{name}-lake/{lake_prefix}`)."
  type        = string
  default     = "lake"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$", var.lake_prefix))
    error_message = "lake_prefix is one or more path segments, without leading or trailing slashes."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the buckets and Athena's results."
  type        = string
}

variable "glacier_after_days" {
  description = "Days after which bad rows and the raw archive move to Glacier Flexible Retrieval."
  type        = number
  default     = 30

  validation {
    condition     = var.glacier_after_days >= 1
    error_message = "glacier_after_days is at least 1."
  }
}

variable "log_retention_days" {
  description = "Days the S3 access logs are kept."
  type        = number
  default     = 90

  validation {
    condition     = var.log_retention_days >= 1
    error_message = "log_retention_days is at least 1."
  }
}

variable "projection_start" {
  description = "The first day (YYYY-MM-DD) Athena's partition projection covers."
  type        = string
  default     = "2026-01-01"

  validation {
    condition     = can(regex("^\\d{4}-\\d{2}-\\d{2}$", var.projection_start))
    error_message = "projection_start is a date, YYYY-MM-DD."
  }
}

variable "force_destroy" {
  description = "Whether `terraform destroy` may delete buckets that still hold objects (test environments only)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "raw_prefix" {
  description = "The key prefix of the raw archive in its bucket (Firehose adds `dt=…/hour=…/`)."
  type        = string
  default     = "raw"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]*$", var.raw_prefix))
    error_message = "raw_prefix is one folder name: lower-case letters, digits, `_` and `-`."
  }
}

variable "raw_buffer_mb" {
  description = "How many MiB Firehose gathers before it writes a raw archive file (fewer, larger files cost less to keep and to replay)."
  type        = number
  default     = 64

  validation {
    condition     = var.raw_buffer_mb >= 1 && var.raw_buffer_mb <= 128
    error_message = "Firehose buffers 1 to 128 MiB."
  }
}

variable "raw_buffer_seconds" {
  description = "The longest Firehose waits before it writes what it has gathered, seconds."
  type        = number
  default     = 300

  validation {
    condition     = var.raw_buffer_seconds >= 0 && var.raw_buffer_seconds <= 900
    error_message = "Firehose waits 0 to 900 seconds."
  }
}
