output "web_acl_arn" {
  description = "The web ACL's ARN."
  value       = aws_wafv2_web_acl.this.arn
}

output "log_group" {
  description = "The WAF log group (each request WAF saw, its rule and action; keys redacted)."
  value       = aws_cloudwatch_log_group.waf.name
}

output "body_limit_regex" {
  description = "The Content-Length pattern that WAF blocks: every number above the body limit."
  value       = local.too_long
}

output "shield_protections" {
  description = "The Shield Advanced protections' ids (empty when it is off)."
  value       = [for p in aws_shield_protection.this : p.id]
}
