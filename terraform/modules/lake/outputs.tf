output "lake_url" {
  description = "The lake's location (`CAUCE_LAKE`): `s3://{bucket}/{prefix}`."
  value       = "s3://${aws_s3_bucket.this["lake"].id}/${var.lake_prefix}"
}

output "bucket_arns" {
  description = "The buckets' ARNs, by role (lake, raw, logs)."
  value       = { for k, b in aws_s3_bucket.this : k => b.arn }
}

output "bucket_names" {
  description = "The buckets' names, by role (lake, raw, logs)."
  value       = { for k, b in aws_s3_bucket.this : k => b.id }
}

output "glue_database" {
  description = "The Glue database of the lake's tables."
  value       = aws_glue_catalog_database.this.name
}

output "athena_workgroup" {
  description = "The Athena workgroup for queries over the lake."
  value       = aws_athena_workgroup.this.name
}

output "prefix" {
  description = "The lake's key prefix within its bucket."
  value       = var.lake_prefix
}

output "raw_stream_name" {
  description = "The Firehose delivery stream of the raw archive (`CAUCE_RAW_STREAM` of the `api` Lambda)."
  value       = aws_kinesis_firehose_delivery_stream.raw.name
}

output "raw_stream_arn" {
  description = "The Firehose delivery stream's ARN, for the `api` Lambda's role."
  value       = aws_kinesis_firehose_delivery_stream.raw.arn
}

output "raw_url" {
  description = "Where the raw archive lands: `s3://{bucket}/{prefix}` (what `cauce replay --raw` takes)."
  value       = "s3://${aws_s3_bucket.this["raw"].id}/${var.raw_prefix}"
}
