locals {
  log_group = "/aws/lambda/${var.name}"
}

data "aws_partition" "current" {}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention is a setting per environment (log_retention_days); envs/prod.tfvars keeps 90 days.
  name              = local.log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_iam_role" "this" {
  name = "${var.name}-role"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "this" {
  name = "${var.name}-policy"
  role = aws_iam_role.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [{
        Sid      = "OwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${aws_cloudwatch_log_group.this.arn}:*"]
      }],
      var.dead_letter_arn == null ? [] : [{
        Sid      = "DeadLetters"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = [var.dead_letter_arn]
      }],
      [for s in var.statements : {
        Sid      = s.sid
        Effect   = "Allow"
        Action   = s.actions
        Resource = s.resources
      }],
    )
  })
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:The functions reach only AWS APIs (SQS, DynamoDB, S3), IAM-authenticated; a VPC would add NAT or endpoint costs and no private resource to reach.
  #checkov:skip=CKV_AWS_272:Code signing needs a Signer profile the deployer owns; the zips come from the project's reproducible build. To add: a code_signing_config_arn.
  function_name                  = var.name
  role                           = aws_iam_role.this.arn
  filename                       = var.zip
  source_code_hash               = fileexists(var.zip) ? filebase64sha256(var.zip) : null
  handler                        = "bootstrap"
  runtime                        = "provided.al2023"
  architectures                  = [var.architecture]
  memory_size                    = var.memory_mb
  timeout                        = var.timeout_s
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  ephemeral_storage {
    size = var.ephemeral_storage_mb
  }

  environment {
    variables = var.environment
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.this.name
    application_log_level = "INFO"
    system_log_level      = "WARN"
  }

  tracing_config {
    mode = "Active"
  }

  dynamic "dead_letter_config" {
    for_each = var.dead_letter_arn == null ? [] : [var.dead_letter_arn]
    content {
      target_arn = dead_letter_config.value
    }
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.this]
}
