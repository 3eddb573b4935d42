"""Whole-volume inference in bounded memory: sliding-window tiles, super_resolve, and the authors' SavedModel run the same way."""
