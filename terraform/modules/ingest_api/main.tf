# The REST API: the `/v1/...` routes of the axum Router, each proxied to the `api` Lambda. Keys
# come in `x-api-key`; the REQUEST authorizer checks them (and answers the app's
# `usageIdentifierKey`, so that usage plans throttle per app: `api_key_source = AUTHORIZER`).
# Ingest bodies are validated against a model before the Lambda runs.

data "aws_region" "current" {}

resource "aws_api_gateway_rest_api" "this" {
  #checkov:skip=CKV2_AWS_51:Clients are apps in users' hands, authenticated by API keys; mutual TLS would need a certificate in every app.
  name                         = var.name
  description                  = "Cauce ingestion API"
  api_key_source               = "AUTHORIZER"
  disable_execute_api_endpoint = false

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

locals {
  api_id = aws_api_gateway_rest_api.this.id
  root   = aws_api_gateway_rest_api.this.root_resource_id
}

resource "aws_api_gateway_resource" "v1" {
  rest_api_id = local.api_id
  parent_id   = local.root
  path_part   = "v1"
}

resource "aws_api_gateway_resource" "healthz" {
  rest_api_id = local.api_id
  parent_id   = local.root
  path_part   = "healthz"
}

resource "aws_api_gateway_resource" "kind" {
  for_each    = toset(["events", "stories", "tests"])
  rest_api_id = local.api_id
  parent_id   = aws_api_gateway_resource.v1.id
  path_part   = each.key
}

# The analytics SDKs' routes (the Segment protocol: a batch, each call and its short form, the
# settings the mobile SDKs fetch). The `api` Lambda checks their key itself: analytics.js sends
# it in the body, where no authorizer can see it.
resource "aws_api_gateway_resource" "sdk" {
  for_each    = toset(["batch", "b", "track", "t", "identify", "i", "page", "p", "screen", "s", "group", "g", "alias", "a"])
  rest_api_id = local.api_id
  parent_id   = aws_api_gateway_resource.v1.id
  path_part   = each.key
}

resource "aws_api_gateway_resource" "projects" {
  rest_api_id = local.api_id
  parent_id   = aws_api_gateway_resource.v1.id
  path_part   = "projects"
}

resource "aws_api_gateway_resource" "project" {
  rest_api_id = local.api_id
  parent_id   = aws_api_gateway_resource.projects.id
  path_part   = "{write_key}"
}

resource "aws_api_gateway_resource" "project_settings" {
  rest_api_id = local.api_id
  parent_id   = aws_api_gateway_resource.project.id
  path_part   = "settings"
}

resource "aws_api_gateway_resource" "users" {
  rest_api_id = local.api_id
  parent_id   = aws_api_gateway_resource.v1.id
  path_part   = "users"
}

resource "aws_api_gateway_resource" "user" {
  rest_api_id = local.api_id
  parent_id   = aws_api_gateway_resource.users.id
  path_part   = "{user_id}"
}

resource "aws_api_gateway_resource" "timeline" {
  rest_api_id = local.api_id
  parent_id   = aws_api_gateway_resource.user.id
  path_part   = "timeline"
}

resource "aws_api_gateway_resource" "reports" {
  rest_api_id = local.api_id
  parent_id   = aws_api_gateway_resource.v1.id
  path_part   = "reports"
}

resource "aws_api_gateway_resource" "report" {
  rest_api_id = local.api_id
  parent_id   = aws_api_gateway_resource.reports.id
  path_part   = "{name}"
}

resource "aws_api_gateway_resource" "admin" {
  rest_api_id = local.api_id
  parent_id   = aws_api_gateway_resource.v1.id
  path_part   = "admin"
}

resource "aws_api_gateway_resource" "admin_any" {
  rest_api_id = local.api_id
  parent_id   = aws_api_gateway_resource.admin.id
  path_part   = "{proxy+}"
}

locals {
  # Every route: its resource, method, which authorizer guards it (`keys`: app keys only,
  # cached per key, metered by the app's usage plan; `team`: an app key or a person's Cognito
  # token, not cached; `lambda`: none, the `api` Lambda checks the key; `none`), and how API
  # Gateway validates the request first.
  routes = merge(
    {
      for k, r in aws_api_gateway_resource.sdk : "POST /v1/${k}" => {
        resource = r.id, method = "POST", auth = "lambda", validate = "none", path = "/v1/${k}"
      }
    },
    {
      for k, r in aws_api_gateway_resource.kind : "POST /v1/${k}" => {
        resource = r.id, method = "POST", auth = "keys", validate = "body", path = "/v1/${k}"
      }
    },
    {
      "GET /healthz" = { resource = aws_api_gateway_resource.healthz.id, method = "GET", auth = "none", validate = "none", path = "/healthz" }
      "GET /v1/projects/{write_key}/settings" = {
        resource = aws_api_gateway_resource.project_settings.id, method = "GET", auth = "lambda", validate = "params", path = "/v1/projects/{write_key}/settings"
      }
      "GET /v1/users/{user_id}/timeline" = { resource = aws_api_gateway_resource.timeline.id, method = "GET", auth = "team", validate = "params", path = "/v1/users/{user_id}/timeline" }
      "GET /v1/reports"                  = { resource = aws_api_gateway_resource.reports.id, method = "GET", auth = "team", validate = "none", path = "/v1/reports" }
      "GET /v1/reports/{name}"           = { resource = aws_api_gateway_resource.report.id, method = "GET", auth = "team", validate = "params", path = "/v1/reports/{name}" }
      "ANY /v1/admin/{proxy+}"           = { resource = aws_api_gateway_resource.admin_any.id, method = "ANY", auth = "team", validate = "params", path = "/v1/admin/{proxy+}" }
    },
  )
  authorizers = {
    keys   = aws_api_gateway_authorizer.keys.id
    team   = aws_api_gateway_authorizer.team.id
    lambda = null
    none   = null
  }
  path_params = {
    "GET /v1/projects/{write_key}/settings" = { "method.request.path.write_key" = true }
    "GET /v1/users/{user_id}/timeline"      = { "method.request.path.user_id" = true }
    "GET /v1/reports/{name}"                = { "method.request.path.name" = true }
    "ANY /v1/admin/{proxy+}"                = { "method.request.path.proxy" = true }
  }
}

resource "aws_api_gateway_authorizer" "keys" {
  name                             = "${var.name}-keys"
  rest_api_id                      = local.api_id
  type                             = "REQUEST"
  authorizer_uri                   = var.authorizer_invoke_arn
  identity_source                  = "method.request.header.x-api-key"
  authorizer_result_ttl_in_seconds = var.authorizer_cache_s
}

# The read and admin routes: an app key or a person's bearer token, either of which may be
# absent. API Gateway refuses a request that lacks any identity source before the authorizer
# runs, so the only one is the method (always there), and nothing is cached (a cache would be
# keyed on the method alone). These routes carry little traffic; each call runs the authorizer.
resource "aws_api_gateway_authorizer" "team" {
  name                             = "${var.name}-team"
  rest_api_id                      = local.api_id
  type                             = "REQUEST"
  authorizer_uri                   = var.authorizer_invoke_arn
  identity_source                  = "context.httpMethod"
  authorizer_result_ttl_in_seconds = 0
}

resource "aws_api_gateway_request_validator" "body" {
  name                        = "body"
  rest_api_id                 = local.api_id
  validate_request_body       = true
  validate_request_parameters = true
}

resource "aws_api_gateway_request_validator" "params" {
  name                        = "params"
  rest_api_id                 = local.api_id
  validate_request_body       = false
  validate_request_parameters = true
}

resource "aws_api_gateway_model" "batch" {
  rest_api_id  = local.api_id
  name         = "Batch"
  description  = "A batch of items: the API validates each item; this refuses what is not a batch at all."
  content_type = "application/json"
  schema = jsonencode({
    "$schema" = "http://json-schema.org/draft-04/schema#"
    title     = "Batch"
    type      = "object"
    required  = ["batch"]
    properties = {
      sent_at = { type = ["string", "integer"] }
      batch   = { type = "array", minItems = 1, maxItems = var.max_batch_items, items = { type = "object" } }
    }
  })
}

resource "aws_api_gateway_method" "route" {
  for_each           = local.routes
  rest_api_id        = local.api_id
  resource_id        = each.value.resource
  http_method        = each.value.method
  authorization      = contains(["none", "lambda"], each.value.auth) ? "NONE" : "CUSTOM"
  authorizer_id      = local.authorizers[each.value.auth]
  api_key_required   = each.value.auth == "keys"
  request_parameters = lookup(local.path_params, each.key, null)
  request_validator_id = (
    each.value.validate == "body" ? aws_api_gateway_request_validator.body.id :
    each.value.validate == "params" ? aws_api_gateway_request_validator.params.id : null
  )
  request_models = each.value.validate == "body" ? { "application/json" = aws_api_gateway_model.batch.name } : null
}

resource "aws_api_gateway_integration" "route" {
  for_each                = local.routes
  rest_api_id             = local.api_id
  resource_id             = each.value.resource
  http_method             = aws_api_gateway_method.route[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = startswith(each.value.path, "/v1/admin/") && var.admin_invoke_arn != null ? var.admin_invoke_arn : var.api_invoke_arn
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowApiGateway"
  action        = "lambda:InvokeFunction"
  function_name = var.api_function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/*/*"
}

resource "aws_lambda_permission" "authorizer" {
  statement_id  = "AllowApiGatewayAuthorizer"
  action        = "lambda:InvokeFunction"
  function_name = var.authorizer_function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/authorizers/*"
}

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = local.api_id

  triggers = {
    redeployment = sha1(jsonencode([
      local.routes,
      aws_api_gateway_model.batch.schema,
      aws_api_gateway_authorizer.keys,
      aws_api_gateway_authorizer.team,
      [for k, i in aws_api_gateway_integration.route : i.id],
    ]))
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [aws_api_gateway_integration.route]
}

resource "aws_cloudwatch_log_group" "access" {
  #checkov:skip=CKV_AWS_338:Retention is a setting per environment (log_retention_days); envs/prod.tfvars keeps 90 days.
  name              = "/aws/apigateway/${var.name}/access"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_iam_role" "logging" {
  count = var.manage_account_logging_role ? 1 : 0
  name  = "${var.name}-apigw-logs"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "apigateway.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "logging" {
  count = var.manage_account_logging_role ? 1 : 0
  name  = "${var.name}-apigw-logs"
  role  = aws_iam_role.logging[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid    = "ApiGatewayLogs"
      Effect = "Allow"
      Action = [
        "logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups",
        "logs:DescribeLogStreams", "logs:PutLogEvents", "logs:GetLogEvents", "logs:FilterLogEvents",
      ]
      Resource = ["arn:aws:logs:${data.aws_region.current.name}:*:log-group:*"]
    }]
  })
}

resource "aws_api_gateway_account" "this" {
  count               = var.manage_account_logging_role ? 1 : 0
  cloudwatch_role_arn = aws_iam_role.logging[0].arn
}

resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV_AWS_120:Ingestion is POSTs that must each reach the Lambda; reads are per-app and fresh. A cache would serve stale or foreign answers.
  #checkov:skip=CKV2_AWS_51:Clients are apps in users' hands, authenticated by API keys; mutual TLS would need a certificate in every app.
  rest_api_id          = local.api_id
  deployment_id        = aws_api_gateway_deployment.this.id
  stage_name           = var.stage
  xray_tracing_enabled = true

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    # One JSON line per request: who, what, how it ended, how long; never the key or the body.
    format = jsonencode({
      requestId      = "$context.requestId"
      ip             = "$context.identity.sourceIp"
      app            = "$context.authorizer.principalId"
      method         = "$context.httpMethod"
      route          = "$context.resourcePath"
      status         = "$context.status"
      error          = "$context.error.responseType"
      bytes          = "$context.responseLength"
      latencyMs      = "$context.responseLatency"
      integrationMs  = "$context.integration.latency"
      requestTime    = "$context.requestTimeEpoch"
      throttledByKey = "$context.identity.apiKeyId"
    })
  }

  tags = var.tags

  depends_on = [aws_api_gateway_account.this]
}

resource "aws_api_gateway_method_settings" "all" {
  #checkov:skip=CKV_AWS_225:Ingestion is POSTs that must each reach the Lambda; a method cache is off on purpose.
  rest_api_id = local.api_id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled        = true
    logging_level          = "ERROR"
    data_trace_enabled     = false
    throttling_rate_limit  = var.stage_rate_limit
    throttling_burst_limit = var.stage_burst_limit
  }
}

resource "aws_api_gateway_usage_plan" "tier" {
  for_each    = var.tiers
  name        = "${var.name}-${each.key}"
  description = "Cauce tier ${each.key}: per-app throttle and daily quota."

  api_stages {
    api_id = local.api_id
    stage  = aws_api_gateway_stage.this.stage_name
  }

  throttle_settings {
    rate_limit  = each.value.rate_limit
    burst_limit = each.value.burst_limit
  }

  quota_settings {
    limit  = each.value.daily_quota
    period = "DAY"
  }

  tags = var.tags
}
