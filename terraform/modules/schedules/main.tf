# EventBridge Scheduler: the compactor hourly, the reporter daily (and hourly if asked). The
# scheduler's role may invoke exactly these two functions.

resource "aws_iam_role" "scheduler" {
  name = "${var.name}-scheduler"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "scheduler.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "scheduler" {
  name = "${var.name}-scheduler"
  role = aws_iam_role.scheduler.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "InvokeJobs"
        Effect   = "Allow"
        Action   = ["lambda:InvokeFunction"]
        Resource = [var.compactor_arn, var.reporter_arn]
      },
      {
        Sid      = "DeadLetters"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = [var.dead_letter_arn]
      },
    ]
  })
}

locals {
  schedules = merge(
    {
      compactor = { expression = var.compact_every, target = var.compactor_arn }
      reporter  = { expression = var.report_daily_at, target = var.reporter_arn }
    },
    var.report_hourly ? { reporter-hourly = { expression = "rate(1 hour)", target = var.reporter_arn } } : {},
  )
}

resource "aws_scheduler_schedule" "job" {
  for_each                     = local.schedules
  name                         = "${var.name}-${each.key}"
  schedule_expression          = each.value.expression
  schedule_expression_timezone = "UTC"
  kms_key_arn                  = var.kms_key_arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = each.value.target
    role_arn = aws_iam_role.scheduler.arn

    retry_policy {
      maximum_retry_attempts       = 3
      maximum_event_age_in_seconds = 3600
    }

    dead_letter_config {
      arn = var.dead_letter_arn
    }
  }
}
