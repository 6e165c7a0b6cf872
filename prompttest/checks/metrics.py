"""Metric checks: latency, cost and tokens, read from the check context.

An unknown metric fails its check: treating an unknown cost as 0 would let an expensive
model pass a budget it was never measured against. A cached answer keeps the latency
and cost of the call that produced it.
"""

from __future__ import annotations

from typing import Any

from prompttest.checks import quote, register
from prompttest.model import CheckContext


def _limit(value: Any) -> str | None:
    """A metric limit: a non-negative number (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return f"expected a non-negative number, got {quote(value)}"
    return None


def _count_limit(value: Any) -> str | None:
    """A token limit: a non-negative integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return f"expected a non-negative integer, got {quote(value)}"
    return None


def _usd(amount: float) -> str:
    """Dollars without float noise or exponent: 0.000015 -> '$0.000015'."""
    text = f"{amount:.6f}".rstrip("0").rstrip(".")
    return f"${text if text not in ('', '-0') else '0'}"


def _ms(value: float) -> str:
    return f"{value:,.0f} ms"


@register("max_latency_ms", prepare=_limit)
def max_latency_ms(output: str, value: float, ctx: CheckContext) -> tuple[bool, str]:
    """The call took at most `value` milliseconds."""
    if ctx.latency_ms is None:
        return False, "latency unknown"
    return ctx.latency_ms <= value, f"latency {_ms(ctx.latency_ms)}, max {_ms(value)}"


@register("max_cost_usd", prepare=_limit)
def max_cost_usd(output: str, value: float, ctx: CheckContext) -> tuple[bool, str]:
    """The call cost at most `value` US dollars; an unknown cost fails."""
    if ctx.cost_usd is None:
        model = ctx.model or "(unnamed)"
        reason = f"cost unknown for model {model} (no price known); set a price or drop this check"
        return False, reason
    return ctx.cost_usd <= value, f"cost {_usd(ctx.cost_usd)}, max {_usd(value)}"


@register("max_tokens", prepare=_count_limit)
def max_tokens(output: str, value: int, ctx: CheckContext) -> tuple[bool, str]:
    """The answer used at most `value` completion tokens; an unknown count fails."""
    if ctx.completion_tokens is None:
        return False, "token count unknown (the provider reported no completion tokens)"
    tokens = ctx.completion_tokens
    noun = "token" if tokens == 1 else "tokens"
    return tokens <= value, f"{tokens} completion {noun}, max {value}"
