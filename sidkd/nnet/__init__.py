"""The student network: models, pooling, losses, training data and the training loop (MATH.md §4)."""
