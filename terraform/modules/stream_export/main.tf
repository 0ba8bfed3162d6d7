# What drives the `writer` and the `exporter`: the SQS FIFO queue and the tables' streams.
# Both report per-item failures (`ReportBatchItemFailures`): the writer fails only the message
# (and the rest of its group) that met a transient error; the exporter returns the first record
# it could not write, and a batch that keeps failing is halved until the bad record is alone,
# retried, then described on the failure queue (the records stay in the stream for 24 hours,
# and in the tables).

resource "aws_sqs_queue" "stream_failures" {
  name                              = "${var.name}-stream-failures"
  message_retention_seconds         = 14 * 86400
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
  tags                              = var.tags
}

resource "aws_lambda_event_source_mapping" "writer" {
  count                   = var.create_event_source_mappings ? 1 : 0
  event_source_arn        = var.queue_arn
  function_name           = var.writer_function_name
  batch_size              = var.writer_batch_size
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.writer_max_concurrency
  }
}

resource "aws_lambda_event_source_mapping" "exporter" {
  for_each                           = var.create_event_source_mappings ? var.stream_arns : {}
  event_source_arn                   = each.value
  function_name                      = var.exporter_function_name
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = var.exporter_batch_size
  maximum_batching_window_in_seconds = var.exporter_batching_window_s
  parallelization_factor             = var.exporter_parallelization
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = var.exporter_max_retries
  maximum_record_age_in_seconds      = -1
  function_response_types            = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.stream_failures.arn
    }
  }
}
