output "topic_arn" {
  description = "The SNS topic every alarm notifies (and tells when it is OK again)."
  value       = aws_sns_topic.alarms.arn
}

output "alarms" {
  description = "Every alarm by name: its namespace, metric (or expression), threshold and comparison."
  value = {
    for a in local.all_alarms : a.alarm_name => {
      namespace  = a.namespace
      metric     = coalesce(a.metric_name, one([for q in a.metric_query : q.expression if q.return_data == true]))
      threshold  = a.threshold
      comparison = a.comparison_operator
    }
  }
}

output "dashboard_name" {
  description = "The CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}
