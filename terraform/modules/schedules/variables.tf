variable "name" {
  description = "Name prefix of the schedules and their role."
  type        = string
}

variable "compactor_arn" {
  description = "The `compactor` Lambda's ARN."
  type        = string
}

variable "reporter_arn" {
  description = "The `reporter` Lambda's ARN."
  type        = string
}

variable "compact_every" {
  description = "The compactor's schedule expression (hourly: each run compacts the hours closed past the grace period)."
  type        = string
  default     = "rate(1 hour)"

  validation {
    condition     = can(regex("^(rate|cron)\\(.+\\)$", var.compact_every))
    error_message = "A schedule expression is rate(...) or cron(...)."
  }
}

variable "report_daily_at" {
  description = "The daily report run, as a cron expression (UTC)."
  type        = string
  default     = "cron(0 6 * * ? *)"

  validation {
    condition     = can(regex("^cron\\(.+\\)$", var.report_daily_at))
    error_message = "report_daily_at is a cron(...) expression."
  }
}

variable "report_hourly" {
  description = "Whether the reports also run every hour (fresher dashboards, 24 times the cost)."
  type        = bool
  default     = false
}

variable "dead_letter_arn" {
  description = "SQS queue for invocations the scheduler could not deliver."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the schedules' payloads."
  type        = string
}
