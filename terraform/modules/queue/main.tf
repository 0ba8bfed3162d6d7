# The API sends each message with its own deduplication id (a hash of group and body), so
# content-based deduplication stays off. High-throughput FIFO: deduplication and the throughput
# limit per message group, so apps (and users within them) run in parallel.

resource "aws_sqs_queue" "dlq" {
  name                              = "${var.name}-dlq.fifo"
  fifo_queue                        = true
  deduplication_scope               = "messageGroup"
  fifo_throughput_limit             = "perMessageGroupId"
  message_retention_seconds         = var.retention_days * 86400
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
  tags                              = var.tags
}

resource "aws_sqs_queue" "this" {
  name                              = "${var.name}.fifo"
  fifo_queue                        = true
  content_based_deduplication       = false
  deduplication_scope               = "messageGroup"
  fifo_throughput_limit             = "perMessageGroupId"
  visibility_timeout_seconds        = var.visibility_timeout_s
  message_retention_seconds         = var.retention_days * 86400
  receive_wait_time_seconds         = 10
  max_message_size                  = 262144
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })

  tags = var.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  count     = var.restrict_dlq_sources ? 1 : 0
  queue_url = aws_sqs_queue.dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this.arn]
  })
}
