# The team's identities: a Cognito user pool whose groups map to Cauce's roles, and one public
# app client (no secret) for the CLI and the dashboard. People are invited by an admin (no
# self sign-up); the `authorizer` Lambda verifies their tokens against the pool's JWKS.
#
# `custom:apps` (optional, comma-separated app ids) restricts what a person may read. Only an
# administrator can set it: the app client may read it but not write it, so a person cannot
# widen their own access with their token.

data "aws_region" "current" {}

locals {
  groups = {
    admin     = { precedence = 1, description = "Manages apps and keys, and reads every app's data." }
    developer = { precedence = 2, description = "Reads the apps' records, timelines and reports (sending stays with app keys)." }
    analyst   = { precedence = 3, description = "Reads reports and timelines." }
  }
}

resource "aws_cognito_user_pool" "this" {
  name                = var.name
  deletion_protection = var.deletion_protection ? "ACTIVE" : "INACTIVE"
  username_attributes = ["email"]
  mfa_configuration   = "OPTIONAL"

  admin_create_user_config {
    allow_admin_create_user_only = true
  }

  auto_verified_attributes = ["email"]

  password_policy {
    minimum_length                   = 14
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = true
    temporary_password_validity_days = 3
  }

  software_token_mfa_configuration {
    enabled = true
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "verified_email"
      priority = 1
    }
  }

  schema {
    name                     = "apps"
    attribute_data_type      = "String"
    mutable                  = true
    developer_only_attribute = false
    string_attribute_constraints {
      min_length = 0
      max_length = 2048
    }
  }

  tags = var.tags
}

resource "aws_cognito_user_group" "role" {
  for_each     = local.groups
  user_pool_id = aws_cognito_user_pool.this.id
  name         = each.key
  description  = each.value.description
  precedence   = each.value.precedence
}

resource "aws_cognito_user_pool_client" "team" {
  name                          = "${var.name}-team"
  user_pool_id                  = aws_cognito_user_pool.this.id
  generate_secret               = false
  prevent_user_existence_errors = "ENABLED"
  enable_token_revocation       = true
  explicit_auth_flows           = ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]

  id_token_validity      = var.token_validity_minutes
  access_token_validity  = var.token_validity_minutes
  refresh_token_validity = 30
  token_validity_units {
    id_token      = "minutes"
    access_token  = "minutes"
    refresh_token = "days"
  }

  read_attributes  = ["email", "email_verified", "name", "custom:apps"]
  write_attributes = ["email", "name"]

  supported_identity_providers         = length(var.callback_urls) > 0 ? ["COGNITO"] : null
  callback_urls                        = length(var.callback_urls) > 0 ? var.callback_urls : null
  allowed_oauth_flows_user_pool_client = length(var.callback_urls) > 0
  allowed_oauth_flows                  = length(var.callback_urls) > 0 ? ["code"] : null
  allowed_oauth_scopes                 = length(var.callback_urls) > 0 ? ["openid", "email", "profile"] : null
}

resource "aws_cognito_user_pool_domain" "this" {
  count        = var.domain_prefix == null ? 0 : 1
  domain       = var.domain_prefix
  user_pool_id = aws_cognito_user_pool.this.id
}
