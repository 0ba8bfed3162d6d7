output "api_url" {
  description = "The API's base URL: clients send to `{api_url}/v1/events`."
  value       = module.ingest_api.invoke_url
}

output "queue_url" {
  description = "The ingest queue (`CAUCE_QUEUE_URL`)."
  value       = module.queue.url
}

output "dlq_url" {
  description = "Its dead-letter queue (`CAUCE_DLQ_URL`, for `cauce dlq`)."
  value       = module.queue.dlq_url
}

output "table_prefix" {
  description = "The table prefix (`CAUCE_TABLE_PREFIX`)."
  value       = module.tables.prefix
}

output "clients_table" {
  description = "The API-key table (`CAUCE_CLIENTS_TABLE`)."
  value       = module.tables.clients_name
}

output "stream_arns" {
  description = "The tables' stream ARNs, by kind."
  value       = module.tables.stream_arns
}

output "lake_url" {
  description = "The lake (`CAUCE_LAKE`)."
  value       = module.lake.lake_url
}

output "buckets" {
  description = "The buckets, by role (lake, raw, logs)."
  value       = module.lake.bucket_names
}

output "raw_url" {
  description = "The raw archive of request bodies, `s3://{bucket}/{prefix}`: what `cauce replay --raw` reads."
  value       = module.lake.raw_url
}

output "raw_stream_name" {
  description = "The Firehose delivery stream that the `api` Lambda archives request bodies on."
  value       = module.lake.raw_stream_name
}

output "glue_database" {
  description = "The Glue database over the lake (Athena, Redshift Spectrum)."
  value       = module.lake.glue_database
}

output "athena_workgroup" {
  description = "The Athena workgroup."
  value       = module.lake.athena_workgroup
}

output "usage_plan_ids" {
  description = "The usage-plan tiers' ids, by tier."
  value       = module.ingest_api.usage_plan_ids
}

output "functions" {
  description = "The Lambda functions' names, by role."
  value       = local.functions
}

output "kms_key_arn" {
  description = "The KMS key that encrypts the deployment."
  value       = aws_kms_key.this.arn
}

output "iam_actions" {
  description = "The IAM actions each function's role allows, by role: least privilege at a glance."
  value = {
    api        = module.api.actions
    admin      = module.admin.actions
    authorizer = module.authorizer.actions
    writer     = module.writer.actions
    exporter   = module.exporter.actions
    compactor  = module.compactor.actions
    reporter   = module.reporter.actions
  }
}

output "stream_failures_url" {
  description = "The SQS queue where the exporter's event source mappings send the stream batches they gave up on (the on-failure destination)."
  value       = module.stream_export.stream_failures_url
}

output "alarm_topic_arn" {
  description = "The SNS topic every alarm notifies: subscribe the on-call's pager to it."
  value       = module.observability.topic_arn
}

output "alarms" {
  description = "Every alarm: its metric, threshold and comparison."
  value       = module.observability.alarms
}

output "dashboard_name" {
  description = "The CloudWatch dashboard."
  value       = module.observability.dashboard_name
}

output "web_acl_arn" {
  description = "The WAF web ACL in front of the API."
  value       = module.edge.web_acl_arn
}

output "team_user_pool_id" {
  description = "The team's Cognito user pool (null without team_sign_in)."
  value       = one(module.identity[*].user_pool_id)
}

output "team_client_id" {
  description = "The team app client, for the CLI and the dashboard (null without team_sign_in)."
  value       = one(module.identity[*].client_id)
}

output "team_issuer" {
  description = "The issuer of the team's tokens (null without team_sign_in)."
  value       = one(module.identity[*].issuer)
}
