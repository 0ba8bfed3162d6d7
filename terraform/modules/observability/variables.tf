variable "name" {
  description = "The deployment's name: the topic, the alarms and the dashboard are named after it."
  type        = string
}

variable "functions" {
  description = "The Lambda functions' names, by role (api, authorizer, writer, exporter, compactor, reporter): each gets an errors and a throttles alarm."
  type        = map(string)
}

variable "queue_name" {
  description = "The ingest queue's name (its oldest message's age is alarmed)."
  type        = string
}

variable "dead_letter_queues" {
  description = "Dead-letter queues by role (ingest, jobs, stream_failures): any message in one alarms."
  type        = map(string)
}

variable "api_name" {
  description = "The REST API's name."
  type        = string
}

variable "stage_name" {
  description = "The API's stage."
  type        = string
}

variable "table_names" {
  description = "The DynamoDB tables, by kind: read or write throttles on one alarm."
  type        = map(string)
}

variable "metrics_namespace" {
  description = "The CloudWatch namespace of Cauce's own metrics (the Lambdas' CAUCE_METRICS_NAMESPACE)."
  type        = string
  default     = "Cauce"
}

variable "kms_key_arn" {
  description = "The KMS key that encrypts the alarm topic."
  type        = string
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each confirms by email). Others (PagerDuty, Slack through Chatbot) subscribe to the `topic_arn` output."
  type        = list(string)
  default     = []
}

variable "queue_age_s" {
  description = "Alarm when the ingest queue's oldest message is older than this, seconds: the writer is not keeping up or is failing."
  type        = number
  default     = 300
}

variable "iterator_age_s" {
  description = "Alarm when the exporter's stream iterator age passes this, seconds: the lake is that far behind the tables."
  type        = number
  default     = 120
}

variable "api_5xx_rate" {
  description = "Alarm when this fraction of API requests end in a 5xx over 5 minutes (0.01 is 1%)."
  type        = number
  default     = 0.01

  validation {
    condition     = var.api_5xx_rate > 0 && var.api_5xx_rate < 1
    error_message = "api_5xx_rate is a fraction between 0 and 1."
  }
}

variable "api_p99_ms" {
  description = "Alarm when the API's p99 latency over 5 minutes passes this, milliseconds."
  type        = number
  default     = 1000
}

variable "bad_rows_rate" {
  description = "Alarm when this fraction of the items sent over 15 minutes is rejected (a client sending bad data, or a release that broke the schema)."
  type        = number
  default     = 0.05

  validation {
    condition     = var.bad_rows_rate > 0 && var.bad_rows_rate < 1
    error_message = "bad_rows_rate is a fraction between 0 and 1."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
