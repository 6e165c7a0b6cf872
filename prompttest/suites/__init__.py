"""Suites: suite files in, Suites and Jobs out (one Job a result key), nothing called.

`loading` finds, reads and validates suite files (`schema`, `casefiles`, `template`);
`jobs` pairs each case with each target; `safety` is --safe; `shards` picks a slice of keys.
"""
