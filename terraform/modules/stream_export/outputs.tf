output "stream_failures_arn" {
  description = "The queue of stream batches the exporter gave up on (the exporter's role must send to it)."
  value       = aws_sqs_queue.stream_failures.arn
}

output "stream_failures_url" {
  description = "The URL of that queue."
  value       = aws_sqs_queue.stream_failures.id
}

output "stream_failures_name" {
  description = "The name of that queue (for the alarm on it)."
  value       = aws_sqs_queue.stream_failures.name
}

output "writer_mapping_uuid" {
  description = "The SQS → writer mapping's id (null when mappings are off)."
  value       = one(aws_lambda_event_source_mapping.writer[*].uuid)
}

output "exporter_mapping_uuids" {
  description = "The stream → exporter mappings' ids, by kind (empty when mappings are off)."
  value       = { for k, m in aws_lambda_event_source_mapping.exporter : k => m.uuid }
}
