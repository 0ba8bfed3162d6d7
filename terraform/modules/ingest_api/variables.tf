variable "name" {
  description = "The REST API's name."
  type        = string
}

variable "stage" {
  description = "The stage's name (the first path segment of the invoke URL)."
  type        = string
  default     = "v1"

  validation {
    condition     = can(regex("^[A-Za-z0-9_]{1,128}$", var.stage))
    error_message = "A stage name is letters, digits and underscores."
  }
}

variable "api_function_name" {
  description = "The `api` Lambda's name."
  type        = string
}

variable "api_invoke_arn" {
  description = "The `api` Lambda's invoke ARN."
  type        = string
}

variable "admin_invoke_arn" {
  description = "The `admin` Lambda's invoke ARN, behind `/v1/admin/…` (null: those routes go to the `api` Lambda). Built from the function's name by the caller, so that the function may read this module's usage-plan ids."
  type        = string
  default     = null
}

variable "authorizer_function_name" {
  description = "The `authorizer` Lambda's name."
  type        = string
}

variable "authorizer_invoke_arn" {
  description = "The `authorizer` Lambda's invoke ARN."
  type        = string
}

variable "authorizer_cache_s" {
  description = "How long API Gateway caches an authorizer answer per key; a disabled key works at most this long."
  type        = number
  default     = 300

  validation {
    condition     = var.authorizer_cache_s >= 0 && var.authorizer_cache_s <= 3600
    error_message = "The authorizer cache is 0 to 3,600 seconds."
  }
}

variable "max_batch_items" {
  description = "The most items a batch may hold (the API's `max_items`); API Gateway refuses a longer batch before the Lambda runs."
  type        = number
  default     = 500

  validation {
    condition     = var.max_batch_items >= 1
    error_message = "max_batch_items is at least 1."
  }
}

variable "tiers" {
  description = "Usage-plan tiers: requests a second (rate and burst) and a daily quota per app key. An app's key joins one tier."
  type = map(object({
    rate_limit  = number
    burst_limit = number
    daily_quota = number
  }))
  nullable = false
  default = {
    free     = { rate_limit = 10, burst_limit = 20, daily_quota = 100000 }
    standard = { rate_limit = 200, burst_limit = 400, daily_quota = 5000000 }
    high     = { rate_limit = 2000, burst_limit = 4000, daily_quota = 100000000 }
  }

  validation {
    condition     = alltrue([for t in values(var.tiers) : t.rate_limit > 0 && t.burst_limit >= t.rate_limit && t.daily_quota > 0])
    error_message = "Each tier needs a positive rate, a burst at least the rate, and a positive quota."
  }
}

variable "stage_rate_limit" {
  description = "Requests a second the whole stage takes (all apps), before API Gateway answers 429."
  type        = number
  default     = 5000
}

variable "stage_burst_limit" {
  description = "The stage's burst, requests."
  type        = number
  default     = 10000
}

variable "log_retention_days" {
  description = "How long the access logs are kept."
  type        = number
  default     = 90
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the access log group."
  type        = string
}

variable "manage_account_logging_role" {
  description = "Whether to set the account's API Gateway CloudWatch role (one per account and region: turn off when another stack owns it)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
