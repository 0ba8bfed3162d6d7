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
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  for_each            = var.dead_letter_queues
  alarm_name          = "${var.name}-dead-letters-${each.key}"
  alarm_description   = "Messages wait in ${each.value}: list them with `cauce dlq list --aws`, fix the cause, replay them."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "queue_age" {
  alarm_name          = "${var.name}-queue-oldest-age"
  alarm_description   = "The ingest queue's oldest message is over ${var.queue_age_s} s old: the writer is failing (see its errors) or cannot keep up."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = var.queue_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  threshold           = var.queue_age_s
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  alarm_name          = "${var.name}-exporter-iterator-age"
  alarm_description   = "The lake is over ${var.iterator_age_s} s behind the tables: the exporter is failing (see its errors) or throttled."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = var.functions["exporter"] }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  threshold           = var.iterator_age_s * 1000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  for_each            = var.functions
  alarm_name          = "${var.name}-${each.key}-errors"
  alarm_description   = "The ${each.key} function failed invocations: its log group has the errors (JSON lines, with the request id)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "throttles" {
  for_each            = var.functions
  alarm_name          = "${var.name}-${each.key}-throttles"
  alarm_description   = "The ${each.key} function was throttled: raise its reserved concurrency or the account's limit."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${var.name}-api-5xx-rate"
  alarm_description   = "Over ${var.api_5xx_rate * 100}% of API requests end in a 5xx: see the api function's errors and the queue."
  namespace           = "AWS/ApiGateway"
  metric_name         = "5XXError"
  dimensions          = local.api_dims
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.api_5xx_rate
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "api_p99" {
  alarm_name          = "${var.name}-api-p99-latency"
  alarm_description   = "The API's p99 latency is over ${var.api_p99_ms} ms for 10 minutes."
  namespace           = "AWS/ApiGateway"
  metric_name         = "Latency"
  dimensions          = local.api_dims
  extended_statistic  = "p99"
  period              = 300
  evaluation_periods  = 2
  threshold           = var.api_p99_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dynamodb_throttles" {
  for_each            = var.table_names
  alarm_name          = "${var.name}-dynamodb-throttles-${each.key}"
  alarm_description   = "DynamoDB throttled reads or writes on ${each.value}: the writer retries, but the queue grows."
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags

  metric_query {
    id          = "throttles"
    expression  = "reads + writes"
    label       = "Throttle events"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = { reads = "ReadThrottleEvents", writes = "WriteThrottleEvents" }
    content {
      id = metric_query.key
      metric {
        namespace   = "AWS/DynamoDB"
        metric_name = metric_query.value
        dimensions  = { TableName = each.value }
        stat        = "Sum"
        period      = 300
      }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "bad_rows" {
  alarm_name          = "${var.name}-bad-rows-rate"
  alarm_description   = "Over ${var.bad_rows_rate * 100}% of the items sent in 15 minutes were rejected: `cauce_items_rejected_total` by `code` and `app` says which client and why."
  evaluation_periods  = 1
  threshold           = var.bad_rows_rate
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags

  metric_query {
    id          = "rate"
    expression  = "IF(accepted + rejected > 0, rejected / (accepted + rejected), 0)"
    label       = "Rejected fraction"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = { accepted = "cauce_items_accepted_total", rejected = "cauce_items_rejected_total" }
    content {
      id = metric_query.key
      metric {
        namespace   = var.metrics_namespace
        metric_name = metric_query.value
        dimensions  = { function = var.functions["api"] }
        stat        = "Sum"
        period      = 900
      }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "export_bad_rows" {
  alarm_name          = "${var.name}-export-bad-rows"
  alarm_description   = "The exporter met stream records it cannot turn into rows; they are archived under bad_rows/ in the lake."
  namespace           = var.metrics_namespace
  metric_name         = "cauce_export_bad_rows_total"
  dimensions          = { function = var.functions["exporter"] }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

locals {
  all_alarms = concat(
    values(aws_cloudwatch_metric_alarm.dead_letters),
    [aws_cloudwatch_metric_alarm.queue_age, aws_cloudwatch_metric_alarm.iterator_age],
    values(aws_cloudwatch_metric_alarm.errors),
    values(aws_cloudwatch_metric_alarm.throttles),
    [aws_cloudwatch_metric_alarm.api_5xx, aws_cloudwatch_metric_alarm.api_p99],
    values(aws_cloudwatch_metric_alarm.dynamodb_throttles),
    [aws_cloudwatch_metric_alarm.bad_rows, aws_cloudwatch_metric_alarm.export_bad_rows],
  )

  region = data.aws_region.current.name
  # A dashboard widget: a title and its metrics, each [namespace, name, dim, value, ..., opts].
  widget = {
    for title, w in {
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
    } : title => w
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
