variable "name" {
  description = "The queue's name, without `.fifo` (the DLQ is `{name}-dlq.fifo`)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,70}$", var.name))
    error_message = "A queue name is 1 to 70 letters, digits, hyphens or underscores (before `-dlq.fifo`)."
  }
}

variable "visibility_timeout_s" {
  description = "How long a received message stays hidden: after a failed write it comes back after this. At least 6 times the writer's timeout, as AWS advises for event source mappings."
  type        = number
  default     = 300

  validation {
    condition     = var.visibility_timeout_s >= 0 && var.visibility_timeout_s <= 43200
    error_message = "An SQS visibility timeout is 0 to 43,200 seconds."
  }
}

variable "max_receive_count" {
  description = "Deliveries before a message goes to the DLQ. Every delivery counts, transient failures too, so with the visibility timeout this decides how long a store outage the queue rides out: 100 × 5 minutes is about 8 hours."
  type        = number
  default     = 100

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "maxReceiveCount is 1 to 1,000."
  }
}

variable "retention_days" {
  description = "How long a message (and a dead letter) is kept."
  type        = number
  default     = 14

  validation {
    condition     = var.retention_days >= 1 && var.retention_days <= 14
    error_message = "SQS keeps messages 1 to 14 days."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the messages."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "restrict_dlq_sources" {
  description = "Whether only this queue may use the DLQ as its dead-letter queue (the DLQ's RedriveAllowPolicy). The moto server keeps no RedriveAllowPolicy, so the emulator run turns it off."
  type        = bool
  default     = true
}
