output "prefix" {
  description = "The table prefix (`CAUCE_TABLE_PREFIX`)."
  value       = var.prefix
}

output "arns" {
  description = "Each kind's table ARN, by kind (events, stories, tests)."
  value       = { for k, t in aws_dynamodb_table.kind : k => t.arn }
}

output "stream_arns" {
  description = "Each kind's stream ARN, by kind: what the exporter reads."
  value       = { for k, t in aws_dynamodb_table.kind : k => t.stream_arn }
}

output "bad_rows_arn" {
  description = "The bad-rows table's ARN."
  value       = aws_dynamodb_table.bad_rows.arn
}

output "clients_name" {
  description = "The clients table's name (`CAUCE_CLIENTS_TABLE`)."
  value       = aws_dynamodb_table.clients.name
}

output "clients_arn" {
  description = "The clients table's ARN."
  value       = aws_dynamodb_table.clients.arn
}

output "names" {
  description = "Each table's name, by kind, and the bad rows' table (`bad_rows`)."
  value       = merge({ for k, t in aws_dynamodb_table.kind : k => t.name }, { bad_rows = aws_dynamodb_table.bad_rows.name })
}
