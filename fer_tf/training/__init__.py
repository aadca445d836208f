"""Training: strategies, the distributed loop, checkpoints, callbacks, search."""
