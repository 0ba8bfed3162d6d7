variable "name" {
  description = "The user pool's name, and the prefix of its domain."
  type        = string
}

variable "callback_urls" {
  description = "Where the hosted sign-in page may send a person back with a code (the dashboard's URL, a CLI's loopback). Empty: no hosted sign-in, the CLI signs in with SRP."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for u in var.callback_urls : can(regex("^(https://|http://localhost[:/]|http://127\\.0\\.0\\.1[:/])", u))])
    error_message = "Callback URLs are HTTPS, or http on localhost for a CLI."
  }
}

variable "domain_prefix" {
  description = "The prefix of the hosted sign-in domain ({prefix}.auth.{region}.amazoncognito.com); null: no domain."
  type        = string
  default     = null
}

variable "token_validity_minutes" {
  description = "How long an id or access token is valid. The authorizer checks expiry; a person removed from a group keeps their role at most this long."
  type        = number
  default     = 60

  validation {
    condition     = var.token_validity_minutes >= 5 && var.token_validity_minutes <= 1440
    error_message = "Cognito allows 5 minutes to 1 day."
  }
}

variable "deletion_protection" {
  description = "Whether the pool refuses to be deleted (turn off only to tear a test deployment down)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
