"""The pull request's one prompttest comment: the summary with a hidden marker at its end, found
again by that marker on the next push and updated, else posted.

Listing, then updating or posting, is retried as a whole: a POST whose answer was lost is
found by its marker on the next try and updated, never posted twice.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import NotPublished, PublishError
from .github import MAX_WAIT, GaveUp, GitHub, Refused, retrying
from .target import Target

DEFAULT_MARKER = "<!-- prompttest -->"
COMMENT_LIMIT = 65536  # characters GitHub takes in a comment's body
STANDS = "the gate's result stands"
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HINTS = {
    401: f"GITHUB_TOKEN was refused (expired, or not a token for this repository): {STANDS}",
    403: f"a pull request from a fork gets a read-only token: {STANDS} "
    "(on the repository's own branches, give the job `permissions: pull-requests: write`)",
    404: f"check --repo and --pr, and that the token can see the repository: {STANDS}",
    **dict.fromkeys(
        (301, 302, 307, 308), f"was the repository renamed? pass --repo with its current name: {STANDS}"
    ),
}


@dataclass(frozen=True)
class Posted:
    action: str  # "created" or "updated"
    url: str  # the comment's page


def marker_for(text: str | None) -> str:
    """The hidden HTML comment that finds the comment again: `<!-- prompttest -->`, or with
    --marker TEXT `<!-- prompttest: TEXT -->` (two gates in one repository, two comments)."""
    if text is None:
        return DEFAULT_MARKER
    flat = " ".join(text.split())
    if not flat or "--" in flat or "<" in flat or ">" in flat or not flat.isprintable():
        raise PublishError(
            f"--marker {text!r} cannot go inside an HTML comment",
            hint="use words without `--`, `<` or `>`, e.g. --marker nightly",
        )
    return f"<!-- prompttest: {flat} -->"


def read_summary(path: str | Path) -> str:
    """The Markdown file's text (bytes that are not UTF-8 shown as �, not refused)."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise PublishError(
            f"cannot read the summary: {error.strerror or type(error).__name__}",
            file=str(path),
            hint="write it first with `prompttest run --markdown PATH`",
        ) from None


def fit_body(markdown: str, marker: str, *, limit: int = COMMENT_LIMIT) -> str:
    """The comment's body: the summary, then the marker; cut with a note when over `limit`."""
    text = markdown.rstrip() or "_(the summary is empty)_"
    tail = f"\n\n{marker}\n"
    if len(text) + len(tail) <= limit:
        return text + tail
    note = (
        f"\n\n**… cut here:** the summary has {len(text):,} characters, more than a GitHub comment "
        f"holds ({limit:,}); the job's reports have all of it."
    )
    room = limit - len(note) - len(tail)
    while True:
        kept = text[: max(room, 0)]
        line_end = kept.rfind("\n")
        if line_end > room // 2:  # whole lines, unless a line is half the page
            kept = kept[:line_end]
        body = _close_blocks(kept) + note + tail
        if len(body) <= limit or room <= 0:
            return body[:limit]
        room -= len(body) - limit  # closing the open blocks took that much more


def _close_blocks(text: str) -> str:
    """`text` with a code fence still open closed, and `<details>` left open closed."""
    fence = ""
    for line in text.split("\n"):
        found = _FENCE.match(line)
        if not found:
            continue
        mark = found.group(1)
        if not fence:
            fence = mark
        elif mark[0] == fence[0] and len(mark) >= len(fence) and not line.strip().strip(mark[0]):
            fence = ""
    closing = f"\n{fence}" if fence else ""
    open_details = len(re.findall(r"<details\b", text)) - len(re.findall(r"</details>", text))
    return text + closing + "\n\n</details>" * max(open_details, 0)


def post_comment(
    target: Target, markdown: str, *, marker: str, token: str, sleep: Callable[[float], None] = time.sleep
) -> Posted:
    """Update the pull request's comment carrying `marker` to show `markdown`, or post one.

    NotPublished (a warning, exit 0) when GitHub refuses, or stays rate limited or failing.
    """
    github = GitHub(target.api_url, token)
    body = fit_body(markdown, marker)
    try:
        return retrying(lambda: _upsert(github, target, body, marker), sleep=sleep)
    except Refused as refused:
        raise NotPublished(
            github.redact(f"not posted on {target}: GitHub answered {refused}"),
            hint=_HINTS.get(refused.status, STANDS),
        ) from None
    except GaveUp as gave_up:
        pause = gave_up.pause
        if gave_up.too_long is not None:
            asked = f"it asks to wait {gave_up.too_long:.0f} s, more than the {MAX_WAIT:.0f} s waited"
            why = f"{pause.reason}; {asked}"
        else:
            why = f"{pause.reason} ({gave_up.tries} tries)"
        if pause.rate_limited:
            hint = f"GitHub limits how often a token writes; the next push updates the comment: {STANDS}"
        else:
            hint = f"GitHub or the network is failing; the next push updates the comment: {STANDS}"
        raise NotPublished(github.redact(f"not posted on {target}: {why}"), hint=hint) from None


def _upsert(github: GitHub, target: Target, body: str, marker: str) -> Posted:
    issue = f"/repos/{target.repo}/issues"
    marked = [
        comment
        for comment in github.pages(f"{issue}/{target.pr}/comments?per_page=100")
        if isinstance(comment, dict)
        and isinstance(comment.get("id"), int)
        and marker in str(comment.get("body") or "")
    ]
    chosen = _choose(github, marked)
    if chosen is not None:
        answer = github.call("PATCH", f"{issue}/comments/{chosen['id']}", {"body": body})
        action = "updated"
    else:
        answer = github.call("POST", f"{issue}/{target.pr}/comments", {"body": body})
        action = "created"
    data = answer.data if isinstance(answer.data, dict) else {}
    url = data.get("html_url") or data.get("url") or f"{target}"
    return Posted(action=action, url=github.redact(str(url)))


def _choose(github: GitHub, marked: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The comment to update: the only one marked; among several, the newest by the token's
    user (GET /user; an app's token, as GITHUB_TOKEN is, cannot ask, and writes as a bot),
    else the newest."""
    if len(marked) <= 1:
        return marked[0] if marked else None
    try:
        me = github.call("GET", "/user").data
        login = me.get("login") if isinstance(me, dict) else None
    except Refused:
        login = None

    def author(comment: dict[str, Any]) -> dict[str, Any]:
        user = comment.get("user")
        return user if isinstance(user, dict) else {}

    if login:
        mine = [c for c in marked if author(c).get("login") == login]
    else:
        mine = [c for c in marked if author(c).get("type") == "Bot"]
    return max(mine or marked, key=lambda c: (str(c.get("created_at") or ""), c["id"]))
