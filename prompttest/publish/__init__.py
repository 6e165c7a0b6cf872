"""Publish: a run's Markdown summary → one comment on its pull request, kept current.

`target` finds where it goes (the repository, the pull request and the API, from flags or
from what GitHub Actions sets) and the token; `github` talks to GitHub's REST API (headers,
pages, rate limits and the errors worth waiting for, the token kept out of every text);
`comment` finds the comment carrying the hidden marker and updates it, or posts a new one.
Nothing here fails a gate: what cannot be posted is `NotPublished`, a warning.
"""

from __future__ import annotations

from .comment import Posted, marker_for, post_comment, read_summary
from .target import Target, read_token, resolve_target

__all__ = ["Posted", "Target", "marker_for", "post_comment", "read_summary", "read_token", "resolve_target"]
