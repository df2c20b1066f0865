"""Readers of the originals' checkpoint and weight file formats (no model knowledge here)."""
