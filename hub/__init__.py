"""Weights as Hugging Face Hub repos: convert checkpoints, write model cards, push and pull."""
