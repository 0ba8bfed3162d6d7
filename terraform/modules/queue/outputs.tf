output "url" {
  description = "The queue's URL (`CAUCE_QUEUE_URL`)."
  value       = aws_sqs_queue.this.id
}

output "arn" {
  description = "The queue's ARN."
  value       = aws_sqs_queue.this.arn
}

output "name" {
  description = "The queue's name."
  value       = aws_sqs_queue.this.name
}

output "dlq_url" {
  description = "The dead-letter queue's URL (`CAUCE_DLQ_URL`)."
  value       = aws_sqs_queue.dlq.id
}

output "dlq_arn" {
  description = "The dead-letter queue's ARN."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_name" {
  description = "The dead-letter queue's name (for the alarm on it)."
  value       = aws_sqs_queue.dlq.name
}
