# One table per kind (streams with new and old images feed the lake exporter; TTL on
# `expires_at` keeps the hot store small), the bad-rows archive, and the clients (API keys).
# Key and attribute names are `store/src/dynamo.rs`'s and `ingest/src/auth/dynamo.rs`'s.

locals {
  kinds       = toset(["events", "stories", "tests"])
  provisioned = var.billing_mode == "PROVISIONED"
}

resource "aws_dynamodb_table" "kind" {
  for_each         = local.kinds
  name             = "${var.prefix}-${each.key}"
  billing_mode     = var.billing_mode
  read_capacity    = local.provisioned ? var.read_capacity : null
  write_capacity   = local.provisioned ? var.write_capacity : null
  hash_key         = "pk"
  range_key        = "sk"
  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "user_pk"
    type = "S"
  }
  attribute {
    name = "user_sk"
    type = "S"
  }

  global_secondary_index {
    name            = "user_timeline"
    hash_key        = "user_pk"
    range_key       = "user_sk"
    projection_type = "ALL"
    read_capacity   = local.provisioned ? var.read_capacity : null
    write_capacity  = local.provisioned ? var.write_capacity : null
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  deletion_protection_enabled = var.deletion_protection
  tags                        = var.tags
}

resource "aws_dynamodb_table" "bad_rows" {
  name         = "${var.prefix}-bad-rows"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  deletion_protection_enabled = var.deletion_protection
  tags                        = var.tags
}

resource "aws_dynamodb_table" "clients" {
  name         = "${var.prefix}-clients"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "key_hash"

  attribute {
    name = "key_hash"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  deletion_protection_enabled = var.deletion_protection
  tags                        = var.tags
}
