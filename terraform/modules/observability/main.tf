# Alarms and a dashboard for on-call: each alarm notifies the SNS topic when it fires and when
# it is OK again. AWS's own metrics (SQS, Lambda, API Gateway, DynamoDB) and Cauce's (the
# Lambdas print them as CloudWatch EMF, namespace `metrics_namespace`, each also rolled up by
# `function`).

data "aws_region" "current" {}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

# CloudWatch must be able to publish to the encrypted topic.
resource "aws_sns_topic_policy" "alarms" {
  arn = aws_sns_topic.alarms.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "CloudWatchAlarms"
      Effect    = "Allow"
      Principal = { Service = "cloudwatch.amazonaws.com" }
      Action    = "sns:Publish"
      Resource  = aws_sns_topic.alarms.arn
    }]
  })
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.alarm_emails)
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.key
}

locals {
  actions  = [aws_sns_topic.alarms.arn]
  api_dims = { ApiName = var.api_name, Stage = var.stage_name }

  # The alarms on one metric each, by name (after `{name}-`). A statistic starting with `p` is
  # a percentile. Each fires above its threshold.
  metric_alarms = merge(
    { for q, queue in var.dead_letter_queues : "dead-letters-${q}" => {
      namespace   = "AWS/SQS", metric = "ApproximateNumberOfMessagesVisible", dimensions = { QueueName = queue },
      stat        = "Maximum", period = 60, evaluations = 1, threshold = 0,
      description = "Messages wait in ${queue}: list them with `cauce dlq list --aws`, fix the cause, replay them."
    } },
    { for f, function in var.functions : "${f}-errors" => {
      namespace   = "AWS/Lambda", metric = "Errors", dimensions = { FunctionName = function },
      stat        = "Sum", period = 300, evaluations = 1, threshold = 0,
      description = "The ${f} function failed invocations: its log group has the errors (JSON lines, with the request id)."
    } },
    { for f, function in var.functions : "${f}-throttles" => {
      namespace   = "AWS/Lambda", metric = "Throttles", dimensions = { FunctionName = function },
      stat        = "Sum", period = 300, evaluations = 1, threshold = 0,
      description = "The ${f} function was throttled: raise its reserved concurrency or the account's limit."
    } },
    {
      "queue-oldest-age" = {
        namespace   = "AWS/SQS", metric = "ApproximateAgeOfOldestMessage", dimensions = { QueueName = var.queue_name },
        stat        = "Maximum", period = 60, evaluations = 3, threshold = var.queue_age_s,
        description = "The ingest queue's oldest message is over ${var.queue_age_s} s old: the writer is failing (see its errors) or cannot keep up."
      }
      "exporter-iterator-age" = {
        namespace   = "AWS/Lambda", metric = "IteratorAge", dimensions = { FunctionName = var.functions["exporter"] },
        stat        = "Maximum", period = 60, evaluations = 3, threshold = var.iterator_age_s * 1000,
        description = "The lake is over ${var.iterator_age_s} s behind the tables: the exporter is failing (see its errors) or throttled."
      }
      "api-5xx-rate" = {
        namespace   = "AWS/ApiGateway", metric = "5XXError", dimensions = local.api_dims,
        stat        = "Average", period = 300, evaluations = 1, threshold = var.api_5xx_rate,
        description = "Over ${var.api_5xx_rate * 100}% of API requests end in a 5xx: see the api function's errors and the queue."
      }
      "api-p99-latency" = {
        namespace   = "AWS/ApiGateway", metric = "Latency", dimensions = local.api_dims,
        stat        = "p99", period = 300, evaluations = 2, threshold = var.api_p99_ms,
        description = "The API's p99 latency is over ${var.api_p99_ms} ms for 10 minutes."
      }
      "export-bad-rows" = {
        namespace   = var.metrics_namespace, metric = "cauce_export_bad_rows_total", dimensions = { function = var.functions["exporter"] },
        stat        = "Sum", period = 300, evaluations = 1, threshold = 0,
        description = "The exporter met stream records it cannot turn into rows; they are archived under bad_rows/ in the lake."
      }
    },
  )

  # The alarms on an expression over summed metrics (each: id => namespace, metric, dimensions).
  math_alarms = merge(
    { for t, table in var.table_names : "dynamodb-throttles-${t}" => {
      expression  = "reads + writes", label = "Throttle events", period = 300, threshold = 0,
      description = "DynamoDB throttled reads or writes on ${table}: the writer retries, but the queue grows."
      metrics = {
        reads  = ["AWS/DynamoDB", "ReadThrottleEvents", { TableName = table }]
        writes = ["AWS/DynamoDB", "WriteThrottleEvents", { TableName = table }]
      }
    } },
    {
      "bad-rows-rate" = {
        expression  = "IF(accepted + rejected > 0, rejected / (accepted + rejected), 0)", label = "Rejected fraction",
        period      = 900, threshold = var.bad_rows_rate,
        description = "Over ${var.bad_rows_rate * 100}% of the items sent in 15 minutes were rejected: `cauce_items_rejected_total` by `code` and `app` says which client and why."
        metrics = {
          accepted = [var.metrics_namespace, "cauce_items_accepted_total", { function = var.functions["api"] }]
          rejected = [var.metrics_namespace, "cauce_items_rejected_total", { function = var.functions["api"] }]
        }
      }
    },
  )
}

resource "aws_cloudwatch_metric_alarm" "metric" {
  for_each            = local.metric_alarms
  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = startswith(each.value.stat, "p") ? null : each.value.stat
  extended_statistic  = startswith(each.value.stat, "p") ? each.value.stat : null
  period              = each.value.period
  evaluation_periods  = each.value.evaluations
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "math" {
  for_each            = local.math_alarms
  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  evaluation_periods  = 1
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags

  metric_query {
    id          = "result"
    expression  = each.value.expression
    label       = each.value.label
    return_data = true
  }

  dynamic "metric_query" {
    for_each = each.value.metrics
    content {
      id = metric_query.key
      metric {
        namespace   = metric_query.value[0]
        metric_name = metric_query.value[1]
        dimensions  = metric_query.value[2]
        stat        = "Sum"
        period      = each.value.period
      }
    }
  }
}

locals {
  all_alarms = concat(values(aws_cloudwatch_metric_alarm.metric), values(aws_cloudwatch_metric_alarm.math))

  region = data.aws_region.current.name
  # A dashboard widget: a title and its metrics, each [namespace, name, dim, value, ..., opts].
  widget = {
    "Items (api, writer)" = { stat = "Sum", metrics = [
      [var.metrics_namespace, "cauce_items_accepted_total", "function", var.functions["api"]],
      [var.metrics_namespace, "cauce_items_rejected_total", "function", var.functions["api"]],
      [var.metrics_namespace, "cauce_items_stored_total", "function", var.functions["writer"]],
      [var.metrics_namespace, "cauce_items_deduplicated_total", "function", var.functions["writer"]],
    ] }
    "API requests and errors" = { stat = "Sum", metrics = [
      ["AWS/ApiGateway", "Count", "ApiName", var.api_name, "Stage", var.stage_name],
      ["AWS/ApiGateway", "4XXError", "ApiName", var.api_name, "Stage", var.stage_name],
      ["AWS/ApiGateway", "5XXError", "ApiName", var.api_name, "Stage", var.stage_name],
    ] }
    "API latency (ms)" = { stat = "p99", metrics = [
      ["AWS/ApiGateway", "Latency", "ApiName", var.api_name, "Stage", var.stage_name, { stat = "p50" }],
      ["AWS/ApiGateway", "Latency", "ApiName", var.api_name, "Stage", var.stage_name],
      ["AWS/ApiGateway", "IntegrationLatency", "ApiName", var.api_name, "Stage", var.stage_name],
    ] }
    "Queue" = { stat = "Maximum", metrics = concat(
      [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.queue_name]],
      [["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", var.queue_name, { yAxis = "right" }]],
      [for q in values(var.dead_letter_queues) : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q]],
    ) }
    "Writer" = { stat = "Sum", metrics = [
      [var.metrics_namespace, "cauce_writer_batch_messages", "function", var.functions["writer"], { stat = "Average" }],
      [var.metrics_namespace, "cauce_writer_failures_total", "function", var.functions["writer"]],
      [var.metrics_namespace, "cauce_dead_lettered_total", "function", var.functions["writer"]],
    ] }
    "Lake" = { stat = "Sum", metrics = [
      [var.metrics_namespace, "cauce_export_rows_total", "function", var.functions["exporter"]],
      [var.metrics_namespace, "cauce_export_files_total", "function", var.functions["exporter"]],
      [var.metrics_namespace, "cauce_export_bad_rows_total", "function", var.functions["exporter"]],
      [var.metrics_namespace, "cauce_export_lag_seconds", "function", var.functions["exporter"], { stat = "Maximum", yAxis = "right" }],
    ] }
    "Lambda errors and throttles" = { stat = "Sum", metrics = concat(
      [for f in values(var.functions) : ["AWS/Lambda", "Errors", "FunctionName", f]],
      [for f in values(var.functions) : ["AWS/Lambda", "Throttles", "FunctionName", f]],
    ) }
    "Lambda duration p99 (ms)" = { stat = "p99", metrics = [for f in values(var.functions) : ["AWS/Lambda", "Duration", "FunctionName", f]] }
    "DynamoDB throttles" = { stat = "Sum", metrics = concat(
      [for t in values(var.table_names) : ["AWS/DynamoDB", "ReadThrottleEvents", "TableName", t]],
      [for t in values(var.table_names) : ["AWS/DynamoDB", "WriteThrottleEvents", "TableName", t]],
    ) }
    "Jobs and cold starts" = { stat = "Sum", metrics = [
      [var.metrics_namespace, "cauce_compaction_runs_total", "function", var.functions["compactor"]],
      [var.metrics_namespace, "cauce_report_runs_total", "function", var.functions["reporter"]],
      [var.metrics_namespace, "cauce_report_duration_seconds", "function", var.functions["reporter"], { stat = "Maximum", yAxis = "right" }],
      [var.metrics_namespace, "cauce_cold_starts_total", "function", var.functions["api"]],
    ] }
  }
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = concat(
      [{
        type       = "alarm", x = 0, y = 0, width = 24, height = 4
        properties = { title = "Alarms", alarms = [for a in local.all_alarms : a.arn] }
      }],
      [for i, title in keys(local.widget) : {
        type   = "metric"
        x      = (i % 2) * 12
        y      = 4 + floor(i / 2) * 6
        width  = 12
        height = 6
        properties = {
          title   = title
          region  = local.region
          view    = "timeSeries"
          period  = 60
          stat    = local.widget[title].stat
          metrics = local.widget[title].metrics
        }
      }],
    )
  })
}
