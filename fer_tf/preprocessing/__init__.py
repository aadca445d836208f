"""Image preprocessing, augmentation and face detection (in-graph where possible)."""
