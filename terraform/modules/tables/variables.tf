variable "prefix" {
  description = "Table name prefix (`CAUCE_TABLE_PREFIX`): the tables are `{prefix}-events`, `-stories`, `-tests`, `-bad-rows` and `-clients`."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{3,200}$", var.prefix))
    error_message = "A table prefix is 3 to 200 letters, digits, dots, hyphens or underscores."
  }
}

variable "billing_mode" {
  description = "PAY_PER_REQUEST (on-demand, the default) or PROVISIONED (cheaper at a steady rate; set the capacities)."
  type        = string
  default     = "PAY_PER_REQUEST"

  validation {
    condition     = contains(["PAY_PER_REQUEST", "PROVISIONED"], var.billing_mode)
    error_message = "billing_mode is PAY_PER_REQUEST or PROVISIONED."
  }
}

variable "write_capacity" {
  description = "Write capacity units of each kind's table and its timeline index, when PROVISIONED."
  type        = number
  default     = 100

  validation {
    condition     = var.write_capacity >= 1
    error_message = "write_capacity is at least 1."
  }
}

variable "read_capacity" {
  description = "Read capacity units of each kind's table and its timeline index, when PROVISIONED."
  type        = number
  default     = 25

  validation {
    condition     = var.read_capacity >= 1
    error_message = "read_capacity is at least 1."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts every table."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "Whether the tables refuse to be deleted (off only for test environments that are destroyed after each run)."
  type        = bool
  default     = true
}
