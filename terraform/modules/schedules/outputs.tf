output "schedules" {
  description = "Each schedule's expression, by name."
  value       = { for k, s in aws_scheduler_schedule.job : k => s.schedule_expression }
}

output "role_arn" {
  description = "The scheduler's role."
  value       = aws_iam_role.scheduler.arn
}
