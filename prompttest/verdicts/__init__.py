"""Verdicts: a key's outcome and its snapshot in, a Verdict out (`table`, the verdict table
of the product); keys with repeats are judged by statistics over their samples (`sampling`).
"""
