"""The pipeline: one run computes the whole review once, stages it and keeps its history."""
