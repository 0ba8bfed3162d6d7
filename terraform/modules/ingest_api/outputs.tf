output "rest_api_id" {
  description = "The REST API's id."
  value       = aws_api_gateway_rest_api.this.id
}

output "invoke_url" {
  description = "The stage's base URL: send to `{invoke_url}/v1/events`."
  value       = aws_api_gateway_stage.this.invoke_url
}

output "stage_arn" {
  description = "The stage's ARN (for a WAF web ACL)."
  value       = aws_api_gateway_stage.this.arn
}

output "routes" {
  description = "The routes API Gateway serves, as `METHOD /path`."
  value       = sort(keys(local.routes))
}

output "usage_plan_ids" {
  description = "Each tier's usage-plan id, by tier: an app's key joins one (`cauce apps create --aws --tier`)."
  value       = { for k, p in aws_api_gateway_usage_plan.tier : k => p.id }
}

output "access_log_group" {
  description = "The access log group."
  value       = aws_cloudwatch_log_group.access.name
}

output "name" {
  description = "The REST API's name (the `ApiName` of its CloudWatch metrics)."
  value       = aws_api_gateway_rest_api.this.name
}

output "stage_name" {
  description = "The stage's name (the `Stage` of its CloudWatch metrics)."
  value       = aws_api_gateway_stage.this.stage_name
}

output "execution_arn" {
  description = "The REST API's execution ARN (for Lambda permissions)."
  value       = aws_api_gateway_rest_api.this.execution_arn
}
