"""Distillation beyond classification: one module per task (teacher, student, losses, metric)."""
