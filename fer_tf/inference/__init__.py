"""Applying trained models: face detection and alignment, the predictor, video, export."""
