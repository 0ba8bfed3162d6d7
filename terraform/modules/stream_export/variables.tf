variable "name" {
  description = "Name prefix of the stream-failure queue."
  type        = string
}

variable "create_event_source_mappings" {
  description = "Whether to create the event source mappings (off against an emulator that would try to run the functions)."
  type        = bool
  default     = true
}

variable "queue_arn" {
  description = "The SQS FIFO queue the `writer` reads."
  type        = string
}

variable "writer_function_name" {
  description = "The `writer` Lambda's name."
  type        = string
}

variable "writer_batch_size" {
  description = "SQS messages per `writer` invocation (FIFO: at most 10)."
  type        = number
  default     = 10

  validation {
    condition     = var.writer_batch_size >= 1 && var.writer_batch_size <= 10
    error_message = "A FIFO queue's batch size is 1 to 10."
  }
}

variable "writer_max_concurrency" {
  description = "The most concurrent `writer` invocations the queue drives (2 to 1,000): message groups beyond it wait."
  type        = number
  default     = 50

  validation {
    condition     = var.writer_max_concurrency >= 2 && var.writer_max_concurrency <= 1000
    error_message = "SQS maximum concurrency is 2 to 1,000."
  }
}

variable "stream_arns" {
  description = "The DynamoDB stream ARNs the `exporter` reads, by kind."
  type        = map(string)
}

variable "exporter_function_name" {
  description = "The `exporter` Lambda's name."
  type        = string
}

variable "exporter_batch_size" {
  description = "Stream records per `exporter` invocation."
  type        = number
  default     = 1000

  validation {
    condition     = var.exporter_batch_size >= 1 && var.exporter_batch_size <= 10000
    error_message = "A stream batch is 1 to 10,000 records."
  }
}

variable "exporter_batching_window_s" {
  description = "Seconds the mapping gathers records before invoking (fewer, larger lake files; also the lake's added delay)."
  type        = number
  default     = 5

  validation {
    condition     = var.exporter_batching_window_s >= 0 && var.exporter_batching_window_s <= 300
    error_message = "A batching window is 0 to 300 seconds."
  }
}

variable "exporter_parallelization" {
  description = "Concurrent batches per stream shard (1 to 10). Records of one key stay in order whatever it is."
  type        = number
  default     = 2

  validation {
    condition     = var.exporter_parallelization >= 1 && var.exporter_parallelization <= 10
    error_message = "The parallelization factor is 1 to 10."
  }
}

variable "exporter_max_retries" {
  description = "Retries of a failing stream batch (halved on each error) before its records go to the failure queue."
  type        = number
  default     = 10

  validation {
    condition     = var.exporter_max_retries >= 0 && var.exporter_max_retries <= 10000
    error_message = "maximum_retry_attempts is 0 to 10,000."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the stream-failure queue."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
