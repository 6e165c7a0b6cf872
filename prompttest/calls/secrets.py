"""Keep secrets off disk: find them in the environment, redact them from any text."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

# Environment variable names that hold credentials, as litellm and most SDKs name them.
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE)
# Values shorter than this are too likely to occur by chance in ordinary text.
_MIN_SECRET_LENGTH = 8
# Bearer tokens and `sk-...` style keys, even when they came from somewhere else.
_KEY_SHAPES = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}|\bsk-[A-Za-z0-9_\-]{8,}")


def secret_values(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Secret values of the environment, keyed by value, naming their variable."""
    env = os.environ if environ is None else environ
    found: dict[str, str] = {}
    for name, value in env.items():
        if _SECRET_NAME.search(name) and len(value) >= _MIN_SECRET_LENGTH:
            found[value] = name
    return found


class Redactor:
    """Replaces every known secret in a text with `[REDACTED:NAME]`."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        # Longest first, so a key that contains another is replaced whole.
        self._secrets = sorted(secret_values(environ).items(), key=lambda kv: -len(kv[0]))

    def __call__(self, text: str) -> str:
        for value, name in self._secrets:
            if value in text:
                text = text.replace(value, f"[REDACTED:{name}]")
        return _KEY_SHAPES.sub(_redact_shape, text)


def _redact_shape(match: re.Match[str]) -> str:
    prefix = match.group(1) or ""
    return f"{prefix}[REDACTED]"
