name               = "cauce-prod"
environment        = "prod"
region             = "us-east-1"
architecture       = "arm64"
log_retention_days = 90
ttl_days           = 30
report_days        = 90
