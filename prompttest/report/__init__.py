"""Renderers: a run record in, text out. Pure functions, no I/O."""
