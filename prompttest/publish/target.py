"""Where a comment goes and with what token: flags first, else what GitHub Actions sets.

A value given wrongly (a --repo that is not OWNER/NAME, an API URL the token must not go to)
is a `PublishError` (exit 2); a value missing (no token, not a pull request's event) is
`NotPublished`, a warning: the gate's result stands.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import NotPublished, PublishError
from ..io.urls import is_loopback_host

PUBLIC_API_URL = "https://api.github.com"
TOKEN_VARIABLE = "GITHUB_TOKEN"
# GitHub's owner and repository names: letters, digits, `-`, `_` and `.` (the owner has no `.`
# or `_`, but a stricter check would only refuse someone's odd but real name).
_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
TOKEN_HINT = (
    f"set {TOKEN_VARIABLE} for this step (env: {TOKEN_VARIABLE}: ${{{{ github.token }}}}) "
    "with `permissions: pull-requests: write`"
)


@dataclass(frozen=True)
class Target:
    """A pull request of a repository, and the API that reaches it."""

    repo: str  # OWNER/NAME
    pr: int
    api_url: str  # without a trailing slash

    def __str__(self) -> str:
        return f"{self.repo}#{self.pr}"


def resolve_target(
    *, repo: str | None, pr: int | None, api_url: str | None, environ: Mapping[str, str]
) -> Target:
    """The flags, else GITHUB_REPOSITORY, the event at GITHUB_EVENT_PATH and GITHUB_API_URL.

    Wrong values raise PublishError (checked first, so a typo is never hidden by a missing
    token); a missing repository or pull request number raises NotPublished.
    """
    repo_source = "--repo" if repo else "GITHUB_REPOSITORY"
    repo = repo or environ.get("GITHUB_REPOSITORY", "").strip() or None
    if repo is not None and (not _REPO.fullmatch(repo) or any(p in {".", ".."} for p in repo.split("/"))):
        raise PublishError(
            f"{repo_source} {repo!r} is not a repository's OWNER/NAME", hint="e.g. --repo octo-org/prompts"
        )
    url_source = "--api-url" if api_url else "GITHUB_API_URL"
    url = check_api_url(api_url or environ.get("GITHUB_API_URL", "").strip() or PUBLIC_API_URL, url_source)
    if repo is None:
        raise NotPublished(
            "not posted: no repository: GITHUB_REPOSITORY is not set",
            hint="pass --repo OWNER/NAME outside GitHub Actions",
        )
    if pr is None:
        pr = pr_from_event(environ.get("GITHUB_EVENT_PATH", ""))
    return Target(repo=repo, pr=pr, api_url=url)


def check_api_url(url: str, source: str) -> str:
    """An http(s) URL with a host, and https unless it is this machine: the token goes there."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise PublishError(
            f"{source} {url!r} is not an http(s) URL of GitHub's API",
            hint=f"e.g. {PUBLIC_API_URL}, or https://HOST/api/v3 for GitHub Enterprise Server",
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
        raise PublishError(
            f"{source} {url!r} is plain http: the token would travel unencrypted",
            hint="use https (plain http is allowed only to this machine: localhost, 127.0.0.1, ::1)",
        )
    return url.rstrip("/")


def pr_from_event(path: str) -> int:
    """The pull request's number in the event GitHub Actions wrote: `pull_request.number`,
    else `number`. NotPublished when there is none (a push, a schedule) or no event."""
    if not path:
        raise NotPublished(
            "not posted: no pull request number: GITHUB_EVENT_PATH is not set",
            hint="pass --pr NUMBER outside GitHub Actions",
        )
    try:
        with open(path, encoding="utf-8") as handle:
            event: Any = json.load(handle)
    except (OSError, ValueError) as error:
        why = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
        raise NotPublished(
            f"not posted: no pull request number: the event file (GITHUB_EVENT_PATH) cannot be read ({why})",
            hint="pass --pr NUMBER",
        ) from None
    event = event if isinstance(event, dict) else {}
    pull = event.get("pull_request")
    for number in ((pull if isinstance(pull, dict) else {}).get("number"), event.get("number")):
        if isinstance(number, int) and not isinstance(number, bool) and number > 0:
            return number
    raise NotPublished(
        "not posted: no pull request number in this workflow's event (not a pull_request event?)",
        hint="run it on `pull_request` events, or pass --pr NUMBER",
    )


def read_token(environ: Mapping[str, str]) -> str:
    """GITHUB_TOKEN from the environment (never a flag: flags show up in process lists and logs)."""
    token = environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise NotPublished(f"not posted: {TOKEN_VARIABLE} is not set", hint=TOKEN_HINT)
    if not (token.isascii() and token.isprintable()) or " " in token:
        raise NotPublished(
            f"not posted: {TOKEN_VARIABLE} has characters no token has (spaces, control characters)",
            hint=TOKEN_HINT,
        )
    return token
