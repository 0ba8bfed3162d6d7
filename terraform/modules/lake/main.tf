# The lake (Parquet by kind, dt and hour, and the published reports), the raw archive of
# accepted request bodies, and the access logs of both; the Glue catalog over the lake with
# Athena partition projection on `dt`/`hour`, and an Athena workgroup.

locals {
  buckets = {
    lake = "${var.name}-lake"
    raw  = "${var.name}-raw"
    logs = "${var.name}-logs"
  }
  # The lake's columns per kind, written by the code (`store/src/lake/schema.rs`).
  columns = jsondecode(file("${path.module}/columns.json"))
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV2_AWS_62:Nothing consumes bucket events: the exporter writes and the jobs run on schedules.
  #checkov:skip=CKV2_AWS_61:Each bucket has its lifecycle in aws_s3_bucket_lifecycle_configuration.lake, .raw and .logs (checkov cannot follow the for_each).
  #checkov:skip=CKV_AWS_144:Versioning and PITR cover mistakes; cross-region replication is a disaster-recovery choice per deployment (a second region doubles storage).
  for_each      = local.buckets
  bucket        = each.value
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each                = aws_s3_bucket.this
  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = aws_s3_bucket.this
  bucket   = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = aws_s3_bucket.this
  bucket   = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = aws_s3_bucket.this
  bucket   = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

data "aws_caller_identity" "current" {}

# With ACLs off (BucketOwnerEnforced), S3 server access logging writes only where a bucket
# policy lets its logging service in; every bucket refuses plain HTTP.
resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.this["logs"].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "ServerAccessLogs"
        Effect    = "Allow"
        Principal = { Service = "logging.s3.amazonaws.com" }
        Action    = "s3:PutObject"
        Resource  = "${aws_s3_bucket.this["logs"].arn}/*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id }
          ArnLike      = { "aws:SourceArn" = [for k, b in aws_s3_bucket.this : b.arn if k != "logs"] }
        }
      },
      {
        Sid       = "TlsOnly"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.this["logs"].arn, "${aws_s3_bucket.this["logs"].arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
}

resource "aws_s3_bucket_logging" "this" {
  for_each      = { for k, b in aws_s3_bucket.this : k => b if k != "logs" }
  depends_on    = [aws_s3_bucket_policy.logs]
  bucket        = each.value.id
  target_bucket = aws_s3_bucket.this["logs"].id
  target_prefix = "${each.key}/"
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket = aws_s3_bucket.this["lake"].id

  rule {
    id     = "bad-rows-to-glacier"
    status = "Enabled"
    filter {
      prefix = "${var.lake_prefix}/bad_rows/"
    }
    transition {
      days          = var.glacier_after_days
      storage_class = "GLACIER"
    }
  }

  rule {
    id     = "old-versions-and-uploads"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "raw" {
  bucket = aws_s3_bucket.this["raw"].id

  rule {
    id     = "raw-to-glacier"
    status = "Enabled"
    filter {}
    transition {
      days          = var.glacier_after_days
      storage_class = "GLACIER"
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.this["logs"].id

  rule {
    id     = "expire-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_glue_catalog_database" "this" {
  name        = replace("${var.name}_lake", "-", "_")
  description = "Cauce's lake: one table per kind, partitioned by ingest day and hour."
}

resource "aws_glue_catalog_table" "kind" {
  for_each      = local.columns
  name          = each.key
  database_name = aws_glue_catalog_database.this.name
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "classification"            = "parquet"
    "parquet.compression"       = "ZSTD"
    "projection.enabled"        = "true"
    "projection.dt.type"        = "date"
    "projection.dt.format"      = "yyyy-MM-dd"
    "projection.dt.range"       = "${var.projection_start},NOW"
    "projection.dt.interval"    = "1"
    "projection.dt.unit"        = "DAYS"
    "projection.hour.type"      = "integer"
    "projection.hour.range"     = "0,23"
    "projection.hour.digits"    = "2"
    "storage.location.template" = "s3://${aws_s3_bucket.this["lake"].id}/${var.lake_prefix}/${each.key}/dt=$${dt}/hour=$${hour}/"
  }

  partition_keys {
    name = "dt"
    type = "string"
  }
  partition_keys {
    name = "hour"
    type = "string"
  }

  storage_descriptor {
    location      = "s3://${aws_s3_bucket.this["lake"].id}/${var.lake_prefix}/${each.key}/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    dynamic "columns" {
      for_each = each.value
      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}

resource "aws_athena_workgroup" "this" {
  name          = var.name
  force_destroy = var.force_destroy

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = 100 * 1024 * 1024 * 1024

    result_configuration {
      output_location = "s3://${aws_s3_bucket.this["logs"].id}/athena-results/"
      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = var.kms_key_arn
      }
    }
  }

  tags = var.tags
}

# The raw archive: the `api` Lambda puts every request body it takes on this stream (one NDJSON
# line per request), which lands gzip-compressed in the raw bucket by receive hour, the layout
# `cauce replay --raw s3://…` reads.
resource "aws_kinesis_firehose_delivery_stream" "raw" {
  name        = "${var.name}-raw"
  destination = "extended_s3"
  tags        = var.tags

  server_side_encryption {
    enabled  = true
    key_type = "CUSTOMER_MANAGED_CMK"
    key_arn  = var.kms_key_arn
  }

  extended_s3_configuration {
    role_arn            = aws_iam_role.firehose.arn
    bucket_arn          = aws_s3_bucket.this["raw"].arn
    prefix              = "${var.raw_prefix}/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"
    error_output_prefix = "${var.raw_prefix}-errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/"
    buffering_size      = var.raw_buffer_mb
    buffering_interval  = var.raw_buffer_seconds
    compression_format  = "GZIP"
    kms_key_arn         = var.kms_key_arn

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose.name
      log_stream_name = "S3Delivery"
    }
  }
}

resource "aws_cloudwatch_log_group" "firehose" {
  #checkov:skip=CKV_AWS_338:Delivery errors matter for days, not a year; the retention is a variable.
  name              = "/aws/kinesisfirehose/${var.name}-raw"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_iam_role" "firehose" {
  name = "${var.name}-raw-firehose"
  tags = var.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "firehose.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "firehose" {
  name = "deliver"
  role = aws_iam_role.firehose.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "RawBucket"
        Effect   = "Allow"
        Action   = ["s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:PutObject"]
        Resource = [aws_s3_bucket.this["raw"].arn, "${aws_s3_bucket.this["raw"].arn}/*"]
      },
      {
        Sid      = "Kms"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = [var.kms_key_arn]
      },
      {
        Sid      = "Logs"
        Effect   = "Allow"
        Action   = ["logs:PutLogEvents"]
        Resource = ["${aws_cloudwatch_log_group.firehose.arn}:*"]
      },
    ]
  })
}
