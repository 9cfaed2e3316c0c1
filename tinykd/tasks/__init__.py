"""Distillation beyond classification: each task module brings data encoding, models, metric."""
