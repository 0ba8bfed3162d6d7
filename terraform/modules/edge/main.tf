# Edge protection in front of the API: a WAFv2 web ACL on the stage with AWS's managed common
# and known-bad-inputs rule groups, a rate limit per client address and a body-size rule at the
# API's own limit, logging to CloudWatch (without the API key); Shield Advanced behind a flag.

locals {
  # A Content-Length above max_body_bytes: more digits, or as many and a larger number.
  limit  = tostring(var.max_body_bytes)
  digits = length(local.limit)
  # For each position, the numbers that share the limit's leading digits and are larger at it.
  larger = [
    for i in range(local.digits) : format(
      "%s[%d-9][0-9]{%d}",
      substr(local.limit, 0, i),
      tonumber(substr(local.limit, i, 1)) + 1,
      local.digits - i - 1,
    ) if tonumber(substr(local.limit, i, 1)) < 9
  ]
  too_long = "^([1-9][0-9]{${local.digits},}|${join("|", local.larger)})$"
}

resource "aws_wafv2_regex_pattern_set" "too_long" {
  name        = "${var.name}-body-too-large"
  description = "A Content-Length above ${var.max_body_bytes} bytes."
  scope       = "REGIONAL"

  regular_expression {
    regex_string = local.too_long
  }

  tags = var.tags
}

resource "aws_wafv2_web_acl" "this" {
  name        = var.name
  description = "Cauce API: managed rules, a rate limit per address, the body limit."
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "common"
    priority = 10

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"

        # The group blocks bodies over 8 KB; batches are up to 1 MiB, which the body-size rule
        # below and the API itself bound. Counted, not blocked.
        rule_action_override {
          name = "SizeRestrictions_BODY"
          action_to_use {
            count {}
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "known-bad-inputs"
    priority = 20

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "rate-per-ip"
    priority = 30

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit              = var.rate_limit_per_ip
        aggregate_key_type = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-rate-per-ip"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "body-too-large"
    priority = 40

    action {
      block {
        custom_response {
          response_code = 413
        }
      }
    }

    statement {
      regex_pattern_set_reference_statement {
        arn = aws_wafv2_regex_pattern_set.too_long.arn
        field_to_match {
          single_header {
            name = "content-length"
          }
        }
        text_transformation {
          priority = 0
          type     = "NONE"
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-body-too-large"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = var.name
    sampled_requests_enabled   = true
  }

  tags = var.tags
}

resource "aws_wafv2_web_acl_association" "stage" {
  resource_arn = var.stage_arn
  web_acl_arn  = aws_wafv2_web_acl.this.arn
}

# WAF's log group must be named aws-waf-logs-….
resource "aws_cloudwatch_log_group" "waf" {
  #checkov:skip=CKV_AWS_338:Retention is a setting per environment (log_retention_days); envs/prod.tfvars keeps 90 days.
  name              = "aws-waf-logs-${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  resource_arn            = aws_wafv2_web_acl.this.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]

  # Never log an app's key.
  redacted_fields {
    single_header {
      name = "x-api-key"
    }
  }

  redacted_fields {
    single_header {
      name = "authorization"
    }
  }
}

resource "aws_shield_protection" "this" {
  for_each     = var.shield_advanced ? toset(var.shield_resource_arns) : toset([])
  name         = "${var.name}-${substr(sha256(each.key), 0, 8)}"
  resource_arn = each.key
  tags         = var.tags
}
