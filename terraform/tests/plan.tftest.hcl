# Plan-level unit tests: a mock AWS provider, no account, nothing created. Each asserts a
# setting the design depends on; run blocks with a `module` block test one module alone.
# Run with `terraform test` (./test.sh does).

mock_provider "aws" {
  mock_data "aws_region" {
    defaults = { name = "us-east-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
}

variables {
  name        = "cauce-test"
  environment = "dev"
  lambda_dir  = "/nonexistent"
  kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/test"
}

run "routes_and_usage_plans" {
  command = plan

  module {
    source = "./modules/ingest_api"
  }

  variables {
    api_function_name        = "cauce-test-api"
    api_invoke_arn           = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/api/invocations"
    authorizer_function_name = "cauce-test-authorizer"
    authorizer_invoke_arn    = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/authorizer/invocations"
  }

  assert {
    condition = toset(output.routes) == toset([
      "POST /v1/events", "POST /v1/stories", "POST /v1/tests",
      "GET /v1/users/{user_id}/timeline", "GET /v1/reports", "GET /v1/reports/{name}",
      "ANY /v1/admin/{proxy+}", "GET /healthz",
    ])
    error_message = "The API serves exactly the Router's routes."
  }

  assert {
    condition     = alltrue([for k, m in aws_api_gateway_method.route : (m.authorization == "CUSTOM") == (k != "GET /healthz")])
    error_message = "Every route but /healthz goes through the authorizer."
  }

  assert {
    condition     = aws_api_gateway_method.route["POST /v1/events"].request_models["application/json"] == "Batch"
    error_message = "Ingest bodies are validated against the Batch model."
  }

  assert {
    condition     = jsondecode(aws_api_gateway_model.batch.schema).properties.batch.maxItems == 500
    error_message = "A batch holds at most the API's 500 items."
  }

  assert {
    condition     = aws_api_gateway_rest_api.this.api_key_source == "AUTHORIZER"
    error_message = "Usage plans throttle per app through the authorizer's usageIdentifierKey."
  }

  assert {
    condition = {
      for k, p in aws_api_gateway_usage_plan.tier : k => [one(p.throttle_settings).rate_limit, one(p.quota_settings).period]
      } == {
      free = [10, "DAY"], standard = [200, "DAY"], high = [2000, "DAY"]
    }
    error_message = "Three tiers, each with a throttle and a daily quota."
  }

  assert {
    condition     = aws_api_gateway_authorizer.keys.identity_source == "method.request.header.x-api-key"
    error_message = "The authorizer reads x-api-key."
  }

  assert {
    condition     = !strcontains(one(aws_api_gateway_stage.this.access_log_settings).format, "x-api-key") && strcontains(one(aws_api_gateway_stage.this.access_log_settings).format, "$context.status")
    error_message = "Access logs record the status, never the key."
  }
}

run "queue_and_retry_design" {
  command = plan

  module {
    source = "./modules/queue"
  }

  override_resource {
    target          = aws_sqs_queue.dlq
    override_during = plan
    values          = { arn = "arn:aws:sqs:us-east-1:123456789012:cauce-test-dlq.fifo" }
  }

  assert {
    condition = (
      aws_sqs_queue.this.fifo_queue &&
      aws_sqs_queue.this.deduplication_scope == "messageGroup" &&
      aws_sqs_queue.this.fifo_throughput_limit == "perMessageGroupId" &&
      !aws_sqs_queue.this.content_based_deduplication
    )
    error_message = "A high-throughput FIFO queue; the API sets the dedup ids."
  }

  assert {
    condition     = aws_sqs_queue.this.visibility_timeout_seconds == 300 && jsondecode(aws_sqs_queue.this.redrive_policy).maxReceiveCount == 100
    error_message = "5 minutes × 100 deliveries: about 8 hours of outage before a dead letter."
  }

  assert {
    condition     = aws_sqs_queue.dlq.fifo_queue && aws_sqs_queue.dlq.message_retention_seconds == 14 * 86400
    error_message = "The DLQ is FIFO and keeps dead letters 14 days."
  }
}

run "event_source_mappings" {
  command = plan

  module {
    source = "./modules/stream_export"
  }

  variables {
    queue_arn              = "arn:aws:sqs:us-east-1:123456789012:cauce-test-ingest.fifo"
    writer_function_name   = "cauce-test-writer"
    exporter_function_name = "cauce-test-exporter"
    stream_arns = {
      events  = "arn:aws:dynamodb:us-east-1:123456789012:table/cauce-test-events/stream/1"
      stories = "arn:aws:dynamodb:us-east-1:123456789012:table/cauce-test-stories/stream/1"
      tests   = "arn:aws:dynamodb:us-east-1:123456789012:table/cauce-test-tests/stream/1"
    }
  }

  assert {
    condition     = aws_lambda_event_source_mapping.writer[0].function_response_types == toset(["ReportBatchItemFailures"]) && aws_lambda_event_source_mapping.writer[0].batch_size == 10
    error_message = "The writer reports per-item failures, ten messages at a time."
  }

  assert {
    condition = alltrue([for k, m in aws_lambda_event_source_mapping.exporter : (
      m.bisect_batch_on_function_error &&
      m.maximum_retry_attempts == 10 &&
      m.parallelization_factor == 2 &&
      m.starting_position == "TRIM_HORIZON" &&
      contains(tolist(m.function_response_types), "ReportBatchItemFailures") &&
      length(one(m.destination_config).on_failure) == 1
    )])
    error_message = "Each stream mapping bisects, retries, reports per-item failures and has an on-failure destination."
  }

  assert {
    condition     = toset(keys(aws_lambda_event_source_mapping.exporter)) == toset(["events", "stories", "tests"])
    error_message = "One stream mapping per kind."
  }
}

run "no_mappings_for_the_emulator" {
  command = plan

  module {
    source = "./modules/stream_export"
  }

  variables {
    create_event_source_mappings = false
    queue_arn                    = "arn:aws:sqs:us-east-1:123456789012:q.fifo"
    writer_function_name         = "w"
    exporter_function_name       = "e"
    stream_arns                  = { events = "arn:aws:dynamodb:us-east-1:123456789012:table/e/stream/1" }
  }

  assert {
    condition     = length(aws_lambda_event_source_mapping.writer) == 0 && length(aws_lambda_event_source_mapping.exporter) == 0
    error_message = "The flag leaves every mapping out."
  }
}

run "lake_encryption_public_access_and_lifecycle" {
  command = plan

  module {
    source = "./modules/lake"
  }

  assert {
    condition = alltrue([for k, b in aws_s3_bucket_public_access_block.this : (
      b.block_public_acls && b.block_public_policy && b.ignore_public_acls && b.restrict_public_buckets
    )])
    error_message = "No bucket can be made public."
  }

  assert {
    condition = length(aws_s3_bucket_server_side_encryption_configuration.this) == 3 && alltrue([
      for k, e in aws_s3_bucket_server_side_encryption_configuration.this :
      one(one(e.rule).apply_server_side_encryption_by_default).sse_algorithm == "aws:kms"
    ])
    error_message = "Every bucket is KMS-encrypted."
  }

  assert {
    condition     = length(aws_s3_bucket_versioning.this) == 3 && length(aws_s3_bucket_logging.this) == 2
    error_message = "Every bucket is versioned; the lake and the raw archive log their access."
  }

  assert {
    condition     = one(one([for r in aws_s3_bucket_lifecycle_configuration.lake.rule : r if r.id == "bad-rows-to-glacier"]).transition).storage_class == "GLACIER"
    error_message = "Bad rows go to Glacier."
  }

  assert {
    condition     = [for c in one(aws_glue_catalog_table.kind["events"].storage_descriptor).columns : c.name][2] == "event_id"
    error_message = "The events table's columns come from columns.json."
  }

  assert {
    condition     = aws_glue_catalog_table.kind["stories"].parameters["projection.enabled"] == "true" && aws_glue_catalog_table.kind["stories"].parameters["projection.hour.range"] == "0,23"
    error_message = "Partitions are projected on dt and hour, not crawled."
  }

  assert {
    condition = (
      one(aws_kinesis_firehose_delivery_stream.raw.extended_s3_configuration).prefix == "raw/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"
      && one(aws_kinesis_firehose_delivery_stream.raw.extended_s3_configuration).compression_format == "GZIP"
      && one(aws_kinesis_firehose_delivery_stream.raw.server_side_encryption).key_type == "CUSTOMER_MANAGED_CMK"
    )
    error_message = "The raw archive lands gzip NDJSON by dt and hour (the layout cauce replay reads), KMS-encrypted."
  }
}

run "tables" {
  command = plan

  module {
    source = "./modules/tables"
  }

  variables {
    prefix = "cauce-test"
  }

  assert {
    condition = alltrue([for k, t in aws_dynamodb_table.kind : (
      t.stream_view_type == "NEW_AND_OLD_IMAGES" &&
      one(t.point_in_time_recovery).enabled &&
      one(t.server_side_encryption).enabled &&
      one(t.ttl).attribute_name == "expires_at" &&
      one(t.global_secondary_index).name == "user_timeline" &&
      t.billing_mode == "PAY_PER_REQUEST"
    )])
    error_message = "Each kind's table streams both images, has PITR, KMS, TTL and the timeline index, on demand."
  }
}

run "least_privilege" {
  command = plan

  # Known at plan: whether the jobs have a dead-letter queue decides an action.
  override_resource {
    target          = aws_sqs_queue.jobs_dlq
    override_during = plan
    values          = { arn = "arn:aws:sqs:us-east-1:123456789012:cauce-test-jobs-dlq" }
  }

  assert {
    condition     = aws_kms_key.this.enable_key_rotation
    error_message = "The key rotates."
  }

  assert {
    condition = output.iam_actions.writer == sort([
      "logs:CreateLogStream", "logs:PutLogEvents",
      "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes",
      "sqs:SendMessage", "dynamodb:PutItem", "dynamodb:GetItem",
      "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey",
    ])
    error_message = "The writer may consume the queue, dead-letter, and write the tables: nothing else."
  }

  assert {
    condition     = !contains(output.iam_actions.api, "dynamodb:PutItem") && contains(output.iam_actions.api, "sqs:SendMessage")
    error_message = "The api Lambda enqueues; it never writes the tables."
  }

  assert {
    condition     = output.iam_actions.authorizer == sort(["logs:CreateLogStream", "logs:PutLogEvents", "dynamodb:GetItem", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"])
    error_message = "The authorizer only reads keys."
  }

  assert {
    condition     = !contains(output.iam_actions.exporter, "s3:DeleteObject") && contains(output.iam_actions.compactor, "s3:DeleteObject")
    error_message = "Only the compactor deletes from the lake."
  }

  assert {
    condition     = alltrue([for f in ["exporter", "compactor"] : contains(output.iam_actions[f], "glue:BatchCreatePartition")]) && !contains(output.iam_actions.reporter, "glue:BatchCreatePartition")
    error_message = "The exporter and the compactor register partitions in Glue; nothing else does."
  }

  assert {
    condition     = contains(output.iam_actions.api, "firehose:PutRecordBatch") && !contains(output.iam_actions.writer, "firehose:PutRecordBatch")
    error_message = "Only the api Lambda archives request bodies."
  }

  assert {
    condition     = alltrue([for a in output.iam_actions.reporter : !startswith(a, "dynamodb:") && !startswith(a, "sqs:Receive")])
    error_message = "The reporter reads the lake only."
  }
}
