"""Losses, SCARF corruption, the pretraining and training loops, and the evaluation protocol."""
