variable "name" {
  description = "The deployment's name: the web ACL, its metrics and its log group are named after it."
  type        = string
}

variable "stage_arn" {
  description = "The API Gateway stage the web ACL guards."
  type        = string
}

variable "rate_limit_per_ip" {
  description = "Requests one client address may make in any 5 minutes before WAF blocks it (until its rate falls back). Keep it well above what one busy app's users behind one NAT send: the per-app usage plans are the finer throttle."
  type        = number
  default     = 20000

  validation {
    condition     = var.rate_limit_per_ip >= 10 && var.rate_limit_per_ip <= 2000000000
    error_message = "A WAF rate limit is 10 to 2,000,000,000 requests per 5 minutes."
  }
}

variable "max_body_bytes" {
  description = "The largest body the API takes (its 1 MiB limit): WAF blocks a request whose Content-Length says more, before it costs a Lambda invocation."
  type        = number
  default     = 1048576
}

variable "kms_key_arn" {
  description = "The KMS key that encrypts the WAF log group."
  type        = string
}

variable "log_retention_days" {
  description = "How long WAF logs are kept."
  type        = number
  default     = 30
}

variable "shield_advanced" {
  description = "Protect `shield_resource_arns` with AWS Shield Advanced. It costs US$3,000 a month per organization (one-year commitment) plus data transfer, so it is off; Shield Standard is always on and free."
  type        = bool
  default     = false
}

variable "shield_resource_arns" {
  description = "What Shield Advanced protects when `shield_advanced` is on. A regional REST API cannot be protected itself: give the CloudFront distribution or the Route 53 hosted zone in front of it."
  type        = list(string)
  default     = []

  validation {
    condition     = !var.shield_advanced || length(var.shield_resource_arns) > 0
    error_message = "shield_advanced needs shield_resource_arns: the CloudFront distribution or Route 53 zone in front of the API."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
