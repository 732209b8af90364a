"""Learned-head layer: the QAMA head, its thresholds, losses, trainer and saved model."""
