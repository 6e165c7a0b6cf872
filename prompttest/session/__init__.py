"""The run as a whole: options and suite files in, a RunRecord out (plan → calls → checks →
verdicts → snapshots and run record); also `merge` of shard runs and the dry run.

`options` builds what a run was asked; `plan` loads the suites into jobs; `loop` answers
them; `results` turns answers into verdicts; `snapshot_updates` and `exits` finish.
"""

from __future__ import annotations

from .exits import exit_code, key_exit_code
from .loop import RunOutcome, run
from .options import RunOptions, options_from_record, recorded_options, run_options
from .plan import Plan, plan
from .results import obsolete_entries

__all__ = [
    "Plan",
    "RunOptions",
    "RunOutcome",
    "exit_code",
    "key_exit_code",
    "obsolete_entries",
    "options_from_record",
    "plan",
    "recorded_options",
    "run",
    "run_options",
]
