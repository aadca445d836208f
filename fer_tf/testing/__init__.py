"""Scaffolding for tests, the demo and the notebooks (like ``keras.src.testing``).

Nothing in the production code paths imports this package: toy models and CLIs for subprocess
tests, the fault-injecting loopback mirror, and helpers that inject faults into a training run.
"""
