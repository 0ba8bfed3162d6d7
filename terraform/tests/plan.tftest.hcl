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
    admin_invoke_arn         = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/admin/invocations"
  }

  assert {
    condition = {
      for k, i in aws_api_gateway_integration.route : k => regex("functions/([a-z]+)/", i.uri)[0] if !endswith(i.uri, "/api/invocations")
    } == { "ANY /v1/admin/{proxy+}" = "admin" }
    error_message = "Only the admin routes reach the admin function; every other route the api function."
  }

  assert {
    condition = toset(output.routes) == toset(concat([
      "POST /v1/events", "POST /v1/stories", "POST /v1/tests",
      "GET /v1/users/{user_id}/timeline", "GET /v1/reports", "GET /v1/reports/{name}",
      "ANY /v1/admin/{proxy+}", "GET /healthz", "GET /v1/projects/{write_key}/settings",
      ], [for p in ["batch", "b", "track", "t", "identify", "i", "page", "p", "screen", "s", "group", "g", "alias", "a"] : "POST /v1/${p}"]
    ))
    error_message = "The API serves exactly the Router's routes, the analytics SDKs' included."
  }

  assert {
    condition     = alltrue([for k, m in aws_api_gateway_method.route : (m.authorization == "CUSTOM") == !(k == "GET /healthz" || strcontains(k, "/v1/projects/") || contains(keys(aws_api_gateway_resource.sdk), trimprefix(k, "POST /v1/")))])
    error_message = "Every route but /healthz and the SDKs' (whose key the api Lambda checks, as analytics.js sends it in the body) goes through an authorizer."
  }

  assert {
    condition = {
      for k, m in aws_api_gateway_method.route : k => m.api_key_required if m.authorization == "CUSTOM"
      } == {
      "POST /v1/events"                  = true, "POST /v1/stories" = true, "POST /v1/tests" = true,
      "GET /v1/users/{user_id}/timeline" = false, "GET /v1/reports" = false,
      "GET /v1/reports/{name}"           = false, "ANY /v1/admin/{proxy+}" = false,
    }
    error_message = "Sending takes an app key under its usage plan; the read and admin routes also take a person's token, which has no usage-plan key."
  }

  assert {
    condition     = aws_api_gateway_authorizer.team.authorizer_result_ttl_in_seconds == 0 && aws_api_gateway_authorizer.team.identity_source == "context.httpMethod"
    error_message = "The team authorizer runs on every call: either credential may be absent, so neither is an identity source, and nothing is cached."
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
    error_message = "The authorizer only reads keys (the pool's JWKS is public)."
  }

  assert {
    condition = output.iam_actions.admin == sort([
      "logs:CreateLogStream", "logs:PutLogEvents", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Scan",
      "apigateway:GET", "apigateway:POST", "apigateway:PATCH", "apigateway:DELETE",
      "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey",
    ]) && !contains(output.iam_actions.api, "apigateway:POST") && !contains(output.iam_actions.api, "dynamodb:Scan")
    error_message = "Only the admin function manages apps (the clients table and API Gateway's keys); the public api function cannot."
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

  assert {
    condition     = alltrue([for a in ["sqs:GetQueueAttributes", "cloudwatch:GetMetricStatistics"] : contains(output.iam_actions.reporter, a)])
    error_message = "The reporter reads the queue's depth and the pipeline's ages, for the lake's watermark."
  }
}

run "alarms_and_dashboard" {
  command = apply

  override_resource {
    target = aws_sns_topic.alarms
    values = { arn = "arn:aws:sns:us-east-1:123456789012:cauce-test-alarms" }
  }

  module {
    source = "./modules/observability"
  }

  variables {
    functions = {
      api      = "f-api", authorizer = "f-authorizer", writer = "f-writer",
      exporter = "f-exporter", compactor = "f-compactor", reporter = "f-reporter",
    }
    queue_name         = "cauce-test-ingest.fifo"
    dead_letter_queues = { ingest = "cauce-test-ingest-dlq.fifo", jobs = "cauce-test-jobs-dlq", stream_failures = "cauce-test-stream-failures" }
    api_name           = "cauce-test"
    stage_name         = "v1"
    table_names        = { events = "cauce-test-events", stories = "cauce-test-stories", tests = "cauce-test-tests" }
    alarm_emails       = ["oncall@example.com"]
  }

  assert {
    condition     = length(output.alarms) == 24
    error_message = "3 dead-letter queues, queue age, iterator age, errors and throttles for 6 functions, API 5xx and p99, 3 tables, 2 bad-row alarms."
  }

  assert {
    condition = alltrue([for a in concat(values(aws_cloudwatch_metric_alarm.metric), values(aws_cloudwatch_metric_alarm.math)) :
      toset(a.alarm_actions) == toset([aws_sns_topic.alarms.arn]) && toset(a.ok_actions) == toset([aws_sns_topic.alarms.arn])
    ])
    error_message = "Every alarm notifies the topic when it fires and when it is OK again."
  }

  assert {
    condition = alltrue([for q in ["ingest", "jobs", "stream_failures"] : output.alarms["cauce-test-dead-letters-${q}"] == {
      namespace = "AWS/SQS", metric = "ApproximateNumberOfMessagesVisible", threshold = 0, comparison = "GreaterThanThreshold"
    }]) && aws_cloudwatch_metric_alarm.metric["dead-letters-jobs"].dimensions.QueueName == "cauce-test-jobs-dlq"
    error_message = "A message in any dead-letter queue alarms."
  }

  assert {
    condition = output.alarms["cauce-test-queue-oldest-age"] == {
      namespace = "AWS/SQS", metric = "ApproximateAgeOfOldestMessage", threshold = 300, comparison = "GreaterThanThreshold"
    } && aws_cloudwatch_metric_alarm.metric["queue-oldest-age"].dimensions.QueueName == "cauce-test-ingest.fifo"
    error_message = "The ingest queue's oldest message over 5 minutes alarms."
  }

  assert {
    condition = output.alarms["cauce-test-exporter-iterator-age"] == {
      namespace = "AWS/Lambda", metric = "IteratorAge", threshold = 120000, comparison = "GreaterThanThreshold"
    } && aws_cloudwatch_metric_alarm.metric["exporter-iterator-age"].dimensions.FunctionName == "f-exporter"
    error_message = "The exporter's iterator age (ms) over 2 minutes alarms."
  }

  assert {
    condition = alltrue([for f, name in var.functions : (
      output.alarms["cauce-test-${f}-errors"] == { namespace = "AWS/Lambda", metric = "Errors", threshold = 0, comparison = "GreaterThanThreshold" } &&
      output.alarms["cauce-test-${f}-throttles"] == { namespace = "AWS/Lambda", metric = "Throttles", threshold = 0, comparison = "GreaterThanThreshold" } &&
      aws_cloudwatch_metric_alarm.metric["${f}-errors"].dimensions.FunctionName == name
    )])
    error_message = "Each function's errors and throttles alarm."
  }

  assert {
    condition = output.alarms["cauce-test-api-5xx-rate"] == {
      namespace = "AWS/ApiGateway", metric = "5XXError", threshold = 0.01, comparison = "GreaterThanThreshold"
      } && aws_cloudwatch_metric_alarm.metric["api-5xx-rate"].statistic == "Average" && aws_cloudwatch_metric_alarm.metric["api-p99-latency"].extended_statistic == "p99" && output.alarms["cauce-test-api-p99-latency"] == {
      namespace = "AWS/ApiGateway", metric = "Latency", threshold = 1000, comparison = "GreaterThanThreshold"
    } && aws_cloudwatch_metric_alarm.metric["api-p99-latency"].dimensions == tomap({ ApiName = "cauce-test", Stage = "v1" })
    error_message = "The API's 5xx rate over 1% and p99 latency over 1 s alarm."
  }

  assert {
    condition = alltrue([for t in ["events", "stories", "tests"] : output.alarms["cauce-test-dynamodb-throttles-${t}"].metric == "reads + writes"]) && toset([
      for q in aws_cloudwatch_metric_alarm.math["dynamodb-throttles-events"].metric_query : one(q.metric).metric_name if length(q.metric) > 0
    ]) == toset(["ReadThrottleEvents", "WriteThrottleEvents"])
    error_message = "Read or write throttles on any table alarm."
  }

  assert {
    condition = aws_cloudwatch_metric_alarm.math["bad-rows-rate"].threshold == 0.05 && toset([
      for q in aws_cloudwatch_metric_alarm.math["bad-rows-rate"].metric_query : [one(q.metric).namespace, one(q.metric).metric_name, one(q.metric).dimensions.function] if length(q.metric) > 0
    ]) == toset([["Cauce", "cauce_items_accepted_total", "f-api"], ["Cauce", "cauce_items_rejected_total", "f-api"]])
    error_message = "Over 5% of items rejected alarms, from the api function's EMF metrics."
  }

  assert {
    condition = output.alarms["cauce-test-export-bad-rows"] == {
      namespace = "Cauce", metric = "cauce_export_bad_rows_total", threshold = 0, comparison = "GreaterThanThreshold"
    }
    error_message = "Any record the exporter cannot export alarms."
  }

  assert {
    condition     = aws_sns_topic.alarms.kms_master_key_id == var.kms_key_arn && aws_sns_topic_subscription.email["oncall@example.com"].protocol == "email"
    error_message = "The topic is encrypted and the on-call address subscribed."
  }

  assert {
    condition = (
      length(jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets[0].properties.alarms) == 24 &&
      contains([for w in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets : try(w.properties.title, "")], "Lake")
    )
    error_message = "The dashboard shows every alarm and the pipeline's metrics."
  }
}

run "edge_protection" {
  command = apply

  override_resource {
    target = aws_wafv2_web_acl.this
    values = { arn = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/cauce-test/1" }
  }

  override_resource {
    target = aws_wafv2_regex_pattern_set.too_long
    values = { arn = "arn:aws:wafv2:us-east-1:123456789012:regional/regexpatternset/cauce-test/2" }
  }

  override_resource {
    target = aws_cloudwatch_log_group.waf
    values = { arn = "arn:aws:logs:us-east-1:123456789012:log-group:aws-waf-logs-cauce-test" }
  }

  module {
    source = "./modules/edge"
  }

  variables {
    stage_arn = "arn:aws:apigateway:us-east-1::/restapis/abc/stages/v1"
  }

  assert {
    condition     = toset([for r in aws_wafv2_web_acl.this.rule : r.name]) == toset(["common", "known-bad-inputs", "rate-per-ip", "body-too-large"])
    error_message = "The managed common and known-bad-inputs groups, the rate per address and the body limit."
  }

  assert {
    condition = one([
      for r in aws_wafv2_web_acl.this.rule : one(one(r.statement).rate_based_statement) if r.name == "rate-per-ip"
    ]).limit == 20000 && one([for r in aws_wafv2_web_acl.this.rule : length(one(r.action).block) if r.name == "rate-per-ip"]) == 1
    error_message = "20,000 requests per 5 minutes per address, then blocked."
  }

  assert {
    condition = one([
      for r in aws_wafv2_web_acl.this.rule : one(one(one(r.statement).managed_rule_group_statement).rule_action_override).name if r.name == "common"
    ]) == "SizeRestrictions_BODY"
    error_message = "The common group's 8 KB body rule counts instead of blocking 1 MiB batches."
  }

  assert {
    condition = (
      can(regex(output.body_limit_regex, "1048577")) && can(regex(output.body_limit_regex, "2000000")) &&
      can(regex(output.body_limit_regex, "10485760")) && can(regex(output.body_limit_regex, "1049000")) &&
      !can(regex(output.body_limit_regex, "1048576")) && !can(regex(output.body_limit_regex, "999999")) &&
      !can(regex(output.body_limit_regex, "1048570")) && !can(regex(output.body_limit_regex, "512"))
    )
    error_message = "WAF blocks a Content-Length above 1 MiB, and only that."
  }

  assert {
    condition     = aws_wafv2_web_acl_association.stage.resource_arn == var.stage_arn && startswith(aws_cloudwatch_log_group.waf.name, "aws-waf-logs-")
    error_message = "The ACL guards the stage and logs to a WAF log group."
  }

  assert {
    condition     = toset([for f in aws_wafv2_web_acl_logging_configuration.this.redacted_fields : one(f.single_header).name]) == toset(["x-api-key", "authorization"])
    error_message = "The WAF log never holds a key or a token."
  }

  assert {
    condition     = length(aws_shield_protection.this) == 0
    error_message = "Shield Advanced is off unless asked for."
  }
}

run "shield_advanced_behind_a_flag" {
  command = plan

  module {
    source = "./modules/edge"
  }

  variables {
    stage_arn            = "arn:aws:apigateway:us-east-1::/restapis/abc/stages/v1"
    shield_advanced      = true
    shield_resource_arns = ["arn:aws:cloudfront::123456789012:distribution/EDFDVBD6EXAMPLE"]
  }

  assert {
    condition     = [for p in aws_shield_protection.this : p.resource_arn] == ["arn:aws:cloudfront::123456789012:distribution/EDFDVBD6EXAMPLE"]
    error_message = "With the flag, the distribution in front of the API is protected."
  }
}

run "team_sign_in" {
  command = apply

  override_resource {
    target = aws_cognito_user_pool.this
    values = { id = "us-east-1_Test", arn = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_Test" }
  }

  module {
    source = "./modules/identity"
  }

  variables {
    callback_urls = ["https://reports.example.com/dashboard", "http://localhost:8765/callback"]
  }

  assert {
    condition     = output.groups == tolist(["admin", "analyst", "developer"]) && aws_cognito_user_group.role["admin"].precedence < aws_cognito_user_group.role["analyst"].precedence
    error_message = "Three groups, the roles' names; admin takes precedence."
  }

  assert {
    condition     = one(aws_cognito_user_pool.this.admin_create_user_config).allow_admin_create_user_only && aws_cognito_user_pool.this.deletion_protection == "ACTIVE"
    error_message = "No self sign-up: admins invite people; the pool is protected from deletion."
  }

  assert {
    condition     = !aws_cognito_user_pool_client.team.generate_secret && contains(aws_cognito_user_pool_client.team.read_attributes, "custom:apps") && !contains(aws_cognito_user_pool_client.team.write_attributes, "custom:apps")
    error_message = "A public client that reads custom:apps but cannot write it: a person cannot widen their own access."
  }

  assert {
    condition     = aws_cognito_user_pool_client.team.allowed_oauth_flows == toset(["code"]) && !contains(aws_cognito_user_pool_client.team.explicit_auth_flows, "ALLOW_USER_PASSWORD_AUTH")
    error_message = "The hosted sign-in uses the code flow; passwords never travel to the client in plain."
  }

  assert {
    condition     = output.issuer == "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Test"
    error_message = "The issuer is the pool's, as its tokens carry it."
  }
}

run "authorizer_knows_the_pool" {
  command = plan

  override_module {
    target = module.identity[0]
    outputs = {
      user_pool_id = "us-east-1_Test", user_pool_arn = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_Test",
      issuer       = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Test", client_id = "team-client",
      groups       = ["admin", "analyst", "developer"], sign_in_domain = null,
    }
  }

  assert {
    condition     = output.team_issuer == "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Test" && output.team_client_id == "team-client"
    error_message = "The deployment names the pool and its client."
  }
}

run "report_days_hold_the_feature_table" {
  command = plan

  variables {
    report_days = 20
  }

  # The reporter's feature table reads 36 days: fewer would stop the Lambda at start.
  expect_failures = [var.report_days]
}
