variable "name" {
  description = "The function's name (also its log group's and role's)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.name))
    error_message = "A Lambda name is 1 to 64 letters, digits, hyphens or underscores."
  }
}

variable "zip" {
  description = "Path of the deployment zip (a `bootstrap` executable at its root, as cargo-lambda builds it)."
  type        = string
}

variable "architecture" {
  description = "The instruction set the zip was built for."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture is x86_64 or arm64."
  }
}

variable "memory_mb" {
  description = "Memory, MB (CPU grows with it)."
  type        = number
  default     = 512

  validation {
    condition     = var.memory_mb >= 128 && var.memory_mb <= 10240
    error_message = "Lambda memory is 128 to 10,240 MB."
  }
}

variable "timeout_s" {
  description = "The most an invocation may run, seconds."
  type        = number
  default     = 30

  validation {
    condition     = var.timeout_s >= 1 && var.timeout_s <= 900
    error_message = "A Lambda timeout is 1 to 900 seconds."
  }
}

variable "ephemeral_storage_mb" {
  description = "Size of /tmp, MB."
  type        = number
  default     = 512

  validation {
    condition     = var.ephemeral_storage_mb >= 512 && var.ephemeral_storage_mb <= 10240
    error_message = "Lambda /tmp is 512 to 10,240 MB."
  }
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for the function; -1 leaves it unreserved."
  type        = number
  default     = -1
}

variable "environment" {
  description = "Environment variables (the function's settings: see the README's Configuration)."
  type        = map(string)
  default     = {}
}

variable "statements" {
  description = "The IAM policy statements of the function's role, beyond writing its own logs: least privilege, one resource list per action set."
  type = list(object({
    sid       = string
    actions   = list(string)
    resources = list(string)
  }))
  default = []
}

variable "log_retention_days" {
  description = "How long the function's logs are kept."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the log group and the environment variables."
  type        = string
}

variable "dead_letter_arn" {
  description = "SQS queue for failed asynchronous invocations (EventBridge schedules); null for none."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
