# Cauce on AWS: API Gateway → `api` → SQS FIFO → `writer` → DynamoDB → streams → `exporter` →
# Parquet in S3 → `compactor` and `reporter` on schedules. One KMS key encrypts everything.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition
  zip       = { for f in ["api", "authorizer", "writer", "exporter", "compactor", "reporter"] : f => "${var.lambda_dir}/${f}.zip" }
  # The `admin` function is the `api` code with the rights to manage apps, behind
  # `/v1/admin/…` only. Its invoke ARN is built from its name: the function reads the usage
  # plans' ids, which the API (that calls it) makes.
  admin_name       = "${var.name}-admin"
  admin_invoke_arn = "arn:${local.partition}:apigateway:${local.region}:lambda:path/2015-03-31/functions/arn:${local.partition}:lambda:${local.region}:${local.account}:function:${local.admin_name}/invocations"
  api_environment = {
    CAUCE_QUEUE_URL                      = module.queue.url
    CAUCE_DLQ_URL                        = module.queue.dlq_url
    CAUCE_TABLE_PREFIX                   = module.tables.prefix
    CAUCE_LAKE                           = module.lake.lake_url
    CAUCE_RAW_STREAM                     = module.lake.raw_stream_name
    CAUCE_GROUP_BUCKETS                  = tostring(var.group_buckets)
    CAUCE_METRICS_APPS                   = tostring(var.metrics_apps)
    CAUCE_CLIENTS_TABLE                  = module.tables.clients_name
    AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH = "true"
  }
  kms = {
    sid       = "Kms"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [aws_kms_key.this.arn]
  }
  lake_bucket_arn = module.lake.bucket_arns["lake"]
  lake_objects    = "${local.lake_bucket_arn}/${module.lake.prefix}/*"
  reports_objects = "${local.lake_bucket_arn}/${module.lake.prefix}/reports/*"
  # The feature table for ML (`features/user/dt=DAY/`), which the reporter writes.
  features_objects = "${local.lake_bucket_arn}/${module.lake.prefix}/features/*"
  # The lake's watermark (`state/watermark.json`), which the reporter writes.
  state_objects = "${local.lake_bucket_arn}/${module.lake.prefix}/state/*"
  table_arns    = values(module.tables.arns)
  index_arns    = [for a in local.table_arns : "${a}/index/*"]
  glue_arn      = "arn:${local.partition}:glue:${local.region}:${local.account}"
  # New partitions of the lake's tables: the exporter adds each as it writes it, the compactor
  # catches up the recent ones.
  glue_partitions = {
    sid     = "CatalogPartitions"
    actions = ["glue:GetTable", "glue:BatchCreatePartition"]
    resources = [
      "${local.glue_arn}:catalog",
      "${local.glue_arn}:database/${module.lake.glue_database}",
      "${local.glue_arn}:table/${module.lake.glue_database}/*",
    ]
  }
}

resource "aws_kms_key" "this" {
  description         = "${var.name}: queues, tables, buckets, logs and Lambda settings"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "Account"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
        Resource  = "*"
        Condition = {
          ArnLike = { "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account}:*" }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

module "queue" {
  source               = "./modules/queue"
  name                 = "${var.name}-ingest"
  kms_key_arn          = aws_kms_key.this.arn
  visibility_timeout_s = var.queue_visibility_timeout_s
  restrict_dlq_sources = var.restrict_dlq_sources
}

module "tables" {
  source              = "./modules/tables"
  prefix              = var.name
  billing_mode        = var.billing_mode
  kms_key_arn         = aws_kms_key.this.arn
  deletion_protection = !var.force_destroy
}

module "lake" {
  source        = "./modules/lake"
  name          = var.name
  kms_key_arn   = aws_kms_key.this.arn
  force_destroy = var.force_destroy
}

# Failed asynchronous invocations (the scheduled jobs) land here.
resource "aws_sqs_queue" "jobs_dlq" {
  name                              = "${var.name}-jobs-dlq"
  message_retention_seconds         = 14 * 86400
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 3600
}

module "api" {
  source             = "./modules/lambda_fn"
  name               = "${var.name}-api"
  zip                = local.zip["api"]
  architecture       = var.architecture
  timeout_s          = 29
  kms_key_arn        = aws_kms_key.this.arn
  log_retention_days = var.log_retention_days
  environment        = local.api_environment
  statements = [
    { sid = "Enqueue", actions = ["sqs:SendMessage", "sqs:GetQueueAttributes"], resources = [module.queue.arn] },
    { sid = "DeadLetterCount", actions = ["sqs:GetQueueAttributes"], resources = [module.queue.dlq_arn] },
    { sid = "Timeline", actions = ["dynamodb:GetItem", "dynamodb:Query"], resources = concat(local.table_arns, local.index_arns) },
    # The analytics SDKs' routes have no authorizer: the api function looks their key up.
    { sid = "SdkKeys", actions = ["dynamodb:GetItem"], resources = [module.tables.clients_arn] },
    { sid = "ReportsList", actions = ["s3:ListBucket"], resources = [local.lake_bucket_arn] },
    { sid = "ReportsRead", actions = ["s3:GetObject"], resources = [local.reports_objects] },
    { sid = "RawArchive", actions = ["firehose:PutRecordBatch"], resources = [module.lake.raw_stream_arn] },
    local.kms,
  ]
}

module "admin" {
  source             = "./modules/lambda_fn"
  name               = local.admin_name
  zip                = local.zip["api"]
  architecture       = var.architecture
  memory_mb          = 256
  timeout_s          = 29
  kms_key_arn        = aws_kms_key.this.arn
  log_retention_days = var.log_retention_days
  environment = merge(local.api_environment, {
    CAUCE_ADMIN_TIER  = var.admin_tier
    CAUCE_USAGE_PLANS = jsonencode(module.ingest_api.usage_plan_ids)
  })
  statements = [
    { sid = "Apps", actions = ["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Scan"], resources = [module.tables.clients_arn] },
    {
      sid     = "GatewayKeys"
      actions = ["apigateway:GET", "apigateway:POST", "apigateway:PATCH", "apigateway:DELETE"]
      resources = concat(
        ["arn:${local.partition}:apigateway:${local.region}::/apikeys", "arn:${local.partition}:apigateway:${local.region}::/apikeys/*"],
        [for id in values(module.ingest_api.usage_plan_ids) : "arn:${local.partition}:apigateway:${local.region}::/usageplans/${id}/keys*"],
      )
    },
    local.kms,
  ]
}

resource "aws_lambda_permission" "admin" {
  statement_id  = "AllowApiGatewayAdmin"
  action        = "lambda:InvokeFunction"
  function_name = module.admin.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${module.ingest_api.execution_arn}/*/*/v1/admin/*"
}

module "authorizer" {
  source             = "./modules/lambda_fn"
  name               = "${var.name}-authorizer"
  zip                = local.zip["authorizer"]
  architecture       = var.architecture
  memory_mb          = 256
  timeout_s          = 10
  kms_key_arn        = aws_kms_key.this.arn
  log_retention_days = var.log_retention_days
  environment = merge(
    { CAUCE_CLIENTS_TABLE = module.tables.clients_name },
    var.team_sign_in ? {
      CAUCE_COGNITO_ISSUER     = module.identity[0].issuer
      CAUCE_COGNITO_CLIENT_IDS = module.identity[0].client_id
    } : {},
  )
  statements = [
    { sid = "Keys", actions = ["dynamodb:GetItem"], resources = [module.tables.clients_arn] },
    local.kms,
  ]
}

module "writer" {
  source             = "./modules/lambda_fn"
  name               = "${var.name}-writer"
  zip                = local.zip["writer"]
  architecture       = var.architecture
  timeout_s          = 45
  kms_key_arn        = aws_kms_key.this.arn
  log_retention_days = var.log_retention_days
  environment = {
    CAUCE_QUEUE_URL    = module.queue.url
    CAUCE_DLQ_URL      = module.queue.dlq_url
    CAUCE_TABLE_PREFIX = module.tables.prefix
    CAUCE_TTL_DAYS     = tostring(var.ttl_days)
    CAUCE_METRICS_APPS = tostring(var.metrics_apps)
  }
  statements = [
    { sid = "Consume", actions = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"], resources = [module.queue.arn] },
    { sid = "DeadLetter", actions = ["sqs:SendMessage"], resources = [module.queue.dlq_arn] },
    { sid = "Store", actions = ["dynamodb:PutItem", "dynamodb:GetItem"], resources = concat(local.table_arns, [module.tables.bad_rows_arn]) },
    local.kms,
  ]
}

module "exporter" {
  source             = "./modules/lambda_fn"
  name               = "${var.name}-exporter"
  zip                = local.zip["exporter"]
  architecture       = var.architecture
  memory_mb          = 1024
  timeout_s          = 120
  kms_key_arn        = aws_kms_key.this.arn
  log_retention_days = var.log_retention_days
  environment        = { CAUCE_LAKE = module.lake.lake_url, CAUCE_GLUE_DATABASE = module.lake.glue_database }
  statements = [
    { sid = "Streams", actions = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"], resources = values(module.tables.stream_arns) },
    { sid = "LakeWrite", actions = ["s3:PutObject"], resources = [local.lake_objects] },
    { sid = "StreamFailures", actions = ["sqs:SendMessage"], resources = [module.stream_export.stream_failures_arn] },
    local.glue_partitions,
    local.kms,
  ]
}

module "compactor" {
  source               = "./modules/lambda_fn"
  name                 = "${var.name}-compactor"
  zip                  = local.zip["compactor"]
  architecture         = var.architecture
  memory_mb            = 1024
  timeout_s            = 900
  ephemeral_storage_mb = 10240
  kms_key_arn          = aws_kms_key.this.arn
  log_retention_days   = var.log_retention_days
  dead_letter_arn      = aws_sqs_queue.jobs_dlq.arn
  environment          = { CAUCE_LAKE = module.lake.lake_url, CAUCE_GLUE_DATABASE = module.lake.glue_database }
  statements = [
    { sid = "LakeList", actions = ["s3:ListBucket"], resources = [local.lake_bucket_arn] },
    { sid = "LakeRewrite", actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], resources = [local.lake_objects] },
    local.glue_partitions,
    local.kms,
  ]
}

module "reporter" {
  source               = "./modules/lambda_fn"
  name                 = "${var.name}-reporter"
  zip                  = local.zip["reporter"]
  architecture         = var.architecture
  memory_mb            = 3008
  timeout_s            = 900
  ephemeral_storage_mb = 10240
  kms_key_arn          = aws_kms_key.this.arn
  log_retention_days   = var.log_retention_days
  dead_letter_arn      = aws_sqs_queue.jobs_dlq.arn
  # The queue's depth and the pipeline's ages give the lake's watermark, written before each run.
  environment = {
    CAUCE_LAKE              = module.lake.lake_url
    CAUCE_REPORT_DAYS       = tostring(var.report_days)
    CAUCE_REPORT_MAX_GB     = "9"
    CAUCE_QUEUE_URL         = module.queue.url
    CAUCE_EXPORTER_FUNCTION = module.exporter.function_name
  }
  statements = [
    { sid = "LakeList", actions = ["s3:ListBucket"], resources = [local.lake_bucket_arn] },
    { sid = "LakeRead", actions = ["s3:GetObject"], resources = [local.lake_objects] },
    { sid = "ReportsWrite", actions = ["s3:PutObject"], resources = [local.reports_objects] },
    { sid = "WatermarkWrite", actions = ["s3:PutObject"], resources = [local.state_objects] },
    { sid = "FeaturesWrite", actions = ["s3:PutObject"], resources = [local.features_objects] },
    { sid = "QueueDepth", actions = ["sqs:GetQueueAttributes"], resources = [module.queue.arn] },
    # GetMetricStatistics has no resource-level permissions.
    { sid = "PipelineAges", actions = ["cloudwatch:GetMetricStatistics"], resources = ["*"] },
    local.kms,
  ]
}

module "ingest_api" {
  source                   = "./modules/ingest_api"
  name                     = var.name
  api_function_name        = module.api.function_name
  api_invoke_arn           = module.api.invoke_arn
  admin_invoke_arn         = local.admin_invoke_arn
  authorizer_function_name = module.authorizer.function_name
  authorizer_invoke_arn    = module.authorizer.invoke_arn
  tiers                    = var.tiers
  kms_key_arn              = aws_kms_key.this.arn
  log_retention_days       = var.log_retention_days
}

module "stream_export" {
  source                       = "./modules/stream_export"
  name                         = var.name
  create_event_source_mappings = var.create_event_source_mappings
  queue_arn                    = module.queue.arn
  writer_function_name         = module.writer.function_name
  stream_arns                  = module.tables.stream_arns
  exporter_function_name       = module.exporter.function_name
  kms_key_arn                  = aws_kms_key.this.arn
}

module "schedules" {
  source          = "./modules/schedules"
  name            = var.name
  compactor_arn   = module.compactor.arn
  reporter_arn    = module.reporter.arn
  report_hourly   = var.report_hourly
  dead_letter_arn = aws_sqs_queue.jobs_dlq.arn
  kms_key_arn     = aws_kms_key.this.arn
}

locals {
  functions = {
    api        = module.api.function_name
    admin      = module.admin.function_name
    authorizer = module.authorizer.function_name
    writer     = module.writer.function_name
    exporter   = module.exporter.function_name
    compactor  = module.compactor.function_name
    reporter   = module.reporter.function_name
  }
}

module "observability" {
  source      = "./modules/observability"
  name        = var.name
  functions   = local.functions
  queue_name  = module.queue.name
  api_name    = module.ingest_api.name
  stage_name  = module.ingest_api.stage_name
  table_names = module.tables.names
  kms_key_arn = aws_kms_key.this.arn
  dead_letter_queues = {
    ingest          = module.queue.dlq_name
    jobs            = aws_sqs_queue.jobs_dlq.name
    stream_failures = module.stream_export.stream_failures_name
  }
  alarm_emails = var.alarm_emails
  tags         = var.tags
}

module "identity" {
  source              = "./modules/identity"
  count               = var.team_sign_in ? 1 : 0
  name                = var.name
  callback_urls       = var.team_callback_urls
  domain_prefix       = var.team_domain_prefix
  deletion_protection = !var.force_destroy
  tags                = var.tags
}

module "edge" {
  source               = "./modules/edge"
  name                 = var.name
  stage_arn            = module.ingest_api.stage_arn
  rate_limit_per_ip    = var.waf_rate_limit_per_ip
  kms_key_arn          = aws_kms_key.this.arn
  log_retention_days   = var.log_retention_days
  shield_advanced      = var.shield_advanced
  shield_resource_arns = var.shield_resource_arns
  tags                 = var.tags
}
