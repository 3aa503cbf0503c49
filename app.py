"""Gradio app (placeholder until the app issue lands)."""
