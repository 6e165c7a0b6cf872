"""Records on disk: snapshots (what was accepted), run records (what a run produced), and
the spools that keep a run's keys on disk while it runs. Results in, files out, and back.

`review` applies decisions on a run's pending changes; `diffing` compares any two sides.
"""
