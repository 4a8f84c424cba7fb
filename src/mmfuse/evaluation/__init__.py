"""Evaluation: predictions, metrics, efficiency and robustness measurements of trained models."""
