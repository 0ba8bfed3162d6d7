output "function_name" {
  description = "The function's name."
  value       = aws_lambda_function.this.function_name
}

output "arn" {
  description = "The function's ARN."
  value       = aws_lambda_function.this.arn
}

output "invoke_arn" {
  description = "The ARN API Gateway invokes the function with."
  value       = aws_lambda_function.this.invoke_arn
}

output "role_name" {
  description = "The function's execution role."
  value       = aws_iam_role.this.name
}

output "log_group" {
  description = "The function's log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "actions" {
  description = "Every IAM action the function's role allows (for audits and the plan tests)."
  value = sort(distinct(concat(
    ["logs:CreateLogStream", "logs:PutLogEvents"],
    var.dead_letter_arn == null ? [] : ["sqs:SendMessage"],
    flatten([for s in var.statements : s.actions]),
  )))
}
