name               = "cauce-dev"
environment        = "dev"
region             = "us-east-1"
log_retention_days = 14
force_destroy      = true
report_hourly      = true
tiers = {
  free     = { rate_limit = 10, burst_limit = 20, daily_quota = 100000 }
  standard = { rate_limit = 100, burst_limit = 200, daily_quota = 1000000 }
}
