"""How a call fails: ProviderError (final, or worth a retry) and the RetryPolicy that
decides, shared by models (`providers`) and applications (`apps`)."""

from __future__ import annotations

import random
from dataclasses import dataclass

# HTTP statuses that say "try again later"; everything else with a status is final.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
# Statuses that say "every call to this model will fail the same way": stop calling it.
FATAL_FOR_TARGET = frozenset({401, 402, 403, 404})
MAX_RETRY_AFTER_S = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """How long one attempt may take and how often a call is tried."""

    timeout_s: float = 60.0
    max_attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Delay before attempt `attempt + 1`: Retry-After if given, else full jitter."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_RETRY_AFTER_S)
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)


class ProviderError(Exception):
    """A call that failed for good (after retries, or at once when retrying cannot help)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        attempts: int = 1,
        fatal: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempts = attempts
        self.fatal = fatal  # a local cause (no key): every call to the model fails the same

    @property
    def fatal_for_target(self) -> bool:
        """True when further calls to the same model would fail the same way."""
        return self.fatal or self.status_code in FATAL_FOR_TARGET or self.quota_exhausted

    @property
    def quota_exhausted(self) -> bool:
        """A 429 that no wait will fix: the account is out of credit (OpenAI's insufficient_quota)."""
        return self.status_code == 429 and any(
            word in self.message.lower() for word in ("insufficient_quota", "exceeded your current quota")
        )


def one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
