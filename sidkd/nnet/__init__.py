"""The student network: models, pooling, losses, training data and the training loop (docs/math.md §4)."""
