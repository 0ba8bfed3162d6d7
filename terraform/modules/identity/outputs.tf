output "user_pool_id" {
  description = "The user pool's id."
  value       = aws_cognito_user_pool.this.id
}

output "user_pool_arn" {
  description = "The user pool's ARN."
  value       = aws_cognito_user_pool.this.arn
}

output "issuer" {
  description = "The tokens' issuer (`iss`): the authorizer's CAUCE_COGNITO_ISSUER; its JWKS is at {issuer}/.well-known/jwks.json."
  value       = "https://cognito-idp.${data.aws_region.current.name}.amazonaws.com/${aws_cognito_user_pool.this.id}"
}

output "client_id" {
  description = "The team app client (the CLI and the dashboard): the authorizer's CAUCE_COGNITO_CLIENT_IDS."
  value       = aws_cognito_user_pool_client.team.id
}

output "groups" {
  description = "The groups, each the role it gives."
  value       = sort(keys(aws_cognito_user_group.role))
}

output "sign_in_domain" {
  description = "The hosted sign-in domain, when one was asked for."
  value       = one(aws_cognito_user_pool_domain.this[*].domain)
}
