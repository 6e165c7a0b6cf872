"""Provider calls: a Call in, an Output out, through litellm (which `litellm_door` imports,
only when a call is made).

Retries live here and only here: litellm is told `num_retries=0`, so attempts are
never multiplied by two nested retry layers.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from ..errors import ModelError
from ..model import Call, Output, ToolCall
from .faults import RETRYABLE_STATUS, ProviderError, RetryPolicy, one_line
from .litellm_door import load_litellm, loaded_litellm
from .local import embeddings as embeddings_local
from .local import llama as local_model
from .pool import WorkerPool
from .throttle import AdaptiveLimit


def check_model(model: str, api_base: str | None = None) -> None:
    """Raise ModelError when no provider answers to `model`: call it before its first call."""
    if local_model.is_local(model) or embeddings_local.is_local_embedding(model):
        return  # ours: local_model / embeddings_local check them
    litellm = load_litellm()
    try:
        litellm.get_llm_provider(model=model, api_base=api_base)
    except Exception:  # litellm raises BadRequestError ("LLM Provider NOT provided")
        raise ModelError(
            f"no provider answers to the model '{model}': nothing was called",
            hint="write the model as litellm does, provider/name: openai/gpt-4o-mini, "
            "anthropic/claude-3-5-haiku-latest, ollama/llama3, or openai/<name> with --api-base "
            "for an OpenAI-compatible server",
        ) from None


async def close_clients() -> None:
    """Close litellm's cached HTTP clients, so a run leaves no open session or socket behind."""
    litellm = loaded_litellm()
    if litellm is not None:
        await litellm.close_litellm_async_clients()


async def complete(
    call: Call, policy: RetryPolicy, limit: AdaptiveLimit | None = None, pool: WorkerPool | None = None
) -> tuple[Output, int]:
    """Answer one call; returns the output and the number of attempts it took.

    Each attempt holds a slot of `limit` (the target's adaptive concurrency), which a 429
    shrinks; waiting between attempts holds none. With a `pool`, a hosted model's attempts
    are sent by its worker processes (retries stay here). Raises ProviderError when the
    call failed for good.
    """
    limit = limit or AdaptiveLimit(ceiling=1)
    attempt = 0
    while True:
        attempt += 1
        try:
            async with limit.attempt() as started:
                try:
                    if pool is not None and in_pool(call) and pool.alive:
                        output = await pool.request("attempt", call, policy)
                    else:
                        output = await attempt_here(call, policy)
                except ProviderError as error:
                    if error.status_code == 429:
                        limit.rate_limited(started)
                    raise
            limit.succeeded()
            return output, attempt
        except ProviderError as error:
            error.attempts = attempt
            if not error.retryable or attempt >= policy.max_attempts:
                raise
            await asyncio.sleep(policy.backoff(attempt, error.retry_after))


def in_pool(call: Call) -> bool:
    """A hosted model's chat call, which a worker process can send; in-process models, the
    team's own apps and embeddings are answered here."""
    return call.kind == "chat" and call.app is None and not local_model.is_local(call.model)


async def attempt_here(call: Call, policy: RetryPolicy) -> Output:
    """One attempt at the call, in this process."""
    if call.kind == "embedding":
        return await _embed(call, policy)
    if call.app is not None:  # the team's own code or service, not a model
        from .apps import answer_app

        return await answer_app(call, policy)
    litellm = load_litellm()
    kwargs = _endpoint(call)
    started = time.perf_counter()
    try:
        # The outer timeout is a backstop: a stalled stream must not hang the run.
        response = await asyncio.wait_for(
            litellm.acompletion(
                model=call.model,
                messages=list(call.messages),
                timeout=policy.timeout_s,
                num_retries=0,
                **kwargs,
            ),
            timeout=policy.timeout_s + 5,
        )
    except TimeoutError:
        raise ProviderError(f"timed out after {policy.timeout_s:g} s", retryable=True) from None
    except Exception as exc:  # litellm raises many types; classify by status code
        raise classify(exc, call) from None
    latency_ms = (time.perf_counter() - started) * 1000
    return _parse_response(response, latency_ms, model=call.model)


def _endpoint(call: Call) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(call.params)
    if call.api_base:
        kwargs["api_base"] = call.api_base
        if call.model.startswith("openai/") and not os.environ.get("OPENAI_API_KEY"):
            # Self-hosted OpenAI-compatible servers rarely want a key; the SDK insists on one.
            kwargs["api_key"] = "no-key"
    return kwargs


async def _embed(call: Call, policy: RetryPolicy) -> Output:
    """The embedding of the call's one text: in-process for the packaged model, else litellm."""
    text = str(call.messages[0]["content"])
    started = time.perf_counter()
    if embeddings_local.is_local_embedding(call.model):
        vectors = await asyncio.to_thread(embeddings_local.embed, [text])
        return _embedding_output(vectors[0], started, cost=0.0, tokens=None)
    litellm = load_litellm()
    try:
        response = await asyncio.wait_for(
            litellm.aembedding(
                model=call.model, input=[text], timeout=policy.timeout_s, num_retries=0, **_endpoint(call)
            ),
            timeout=policy.timeout_s + 5,
        )
    except TimeoutError:
        raise ProviderError(f"timed out after {policy.timeout_s:g} s", retryable=True) from None
    except Exception as exc:  # litellm raises many types; classify by status code
        raise classify(exc, call) from None
    try:
        item = response.data[0]
        vector = item["embedding"] if isinstance(item, dict) else item.embedding
        values = [float(x) for x in vector]
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        raise ProviderError("malformed response: no embedding vector", retryable=True) from None
    if not values:
        raise ProviderError("malformed response: an empty embedding vector", retryable=True)
    cost = (getattr(response, "_hidden_params", None) or {}).get("response_cost")
    usage = getattr(response, "usage", None)
    return _embedding_output(
        values,
        started,
        cost=float(cost) if isinstance(cost, (int, float)) else None,
        tokens=getattr(usage, "prompt_tokens", None),
    )


def _embedding_output(
    vector: list[float], started: float, *, cost: float | None, tokens: int | None
) -> Output:
    return Output(
        text="",
        prompt_tokens=tokens,
        cost_usd=cost,
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
        embedding=tuple(vector),
    )


def _parse_response(response: Any, latency_ms: float, *, model: str = "") -> Output:
    """An answer is text, tool calls, or both; with neither (and no refusal) it is malformed."""
    try:
        choice = response.choices[0]
        message = choice.message
    except (AttributeError, IndexError, TypeError):
        raise ProviderError("malformed response: no message", retryable=True) from None
    text = getattr(message, "content", None)
    tool_calls = _tool_calls(getattr(message, "tool_calls", None))
    refusal = _refusal(message)
    if not isinstance(text, str) and not tool_calls and refusal is None:
        raise ProviderError("malformed response: no message content and no tool call", retryable=True)
    finish_reason = getattr(choice, "finish_reason", None)
    usage = getattr(response, "usage", None)
    hidden = getattr(response, "_hidden_params", None) or {}
    cost = hidden.get("response_cost")
    if cost is None and local_model.is_local(model):
        cost = 0.0  # runs in-process: free, not unknown (litellm has no price for it)
    return Output(
        text=text if isinstance(text, str) else "",
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        cost_usd=float(cost) if isinstance(cost, (int, float)) else None,
        latency_ms=round(latency_ms, 1),
        tool_calls=tool_calls,
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        refusal=refusal,
    )


def _refusal(message: Any) -> str | None:
    """OpenAI's `message.refusal`; litellm keeps it among the provider's own fields."""
    refusal = getattr(message, "refusal", None)
    if refusal is None:
        refusal = (getattr(message, "provider_specific_fields", None) or {}).get("refusal")
    return refusal if isinstance(refusal, str) and refusal else None


def _tool_calls(raw: Any) -> tuple[ToolCall, ...]:
    """The message's function calls, in order; a call without a function name is malformed."""
    calls = []
    for item in raw or ():
        function = item.get("function") if isinstance(item, dict) else getattr(item, "function", None)
        if isinstance(function, dict):
            name, arguments = function.get("name"), function.get("arguments")
        else:
            name, arguments = getattr(function, "name", None), getattr(function, "arguments", None)
        if not isinstance(name, str) or not name:
            raise ProviderError("malformed response: a tool call without a function name", retryable=True)
        if arguments is not None and not isinstance(arguments, str):
            arguments = json.dumps(arguments)  # some providers send the arguments as an object
        calls.append(ToolCall.parse(name, arguments))
    return tuple(calls)


def classify(exc: BaseException, call: Call | None = None) -> ProviderError:
    """Turn any exception from litellm into a ProviderError that knows if a retry helps.

    litellm reports a missing key and a refused connection as HTTP 500s, though nothing
    answered: they are told as what they are (with the call, naming its key or endpoint).
    """
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    message = one_line(getattr(exc, "message", None) or str(exc) or type(exc).__name__)
    name = type(exc).__name__
    if "Missing credentials" in message or "api_key client option must be set" in message:
        return ProviderError(_no_key(call.model if call else None), fatal=True)  # no wait brings a key
    if name == "APIConnectionError" or "Connection error" in message:
        where = (call.api_base if call else None) or "the provider's endpoint"
        return ProviderError(f"could not connect to {where}: {message.rsplit(' - ', 1)[-1]}", retryable=True)
    if name in ("Timeout", "APITimeoutError", "TimeoutError", "ReadTimeout"):
        return ProviderError(f"timed out: {message}", status_code=status, retryable=True)
    if status is None:
        # Dropped connections, unparseable bodies: transient until proven otherwise.
        return ProviderError(f"{name}: {message}", retryable=True)
    retry_after = _retry_after(exc) if status == 429 else None
    error = ProviderError(
        f"HTTP {status} ({name}): {message}",
        status_code=status,
        retryable=status in RETRYABLE_STATUS,
        retry_after=retry_after,
    )
    if error.quota_exhausted:
        error.retryable = False  # waiting does not buy credit
    return error


def _no_key(model: str | None) -> str:
    """`no API key: set OPENAI_API_KEY`, naming the variables litellm looks for."""
    missing: list[str] = []
    if model:
        try:
            missing = list(load_litellm().validate_environment(model=model).get("missing_keys") or [])
        except Exception:  # an unusual model string: say it without the variable's name
            missing = []
    if missing:
        return f"no API key: set {' or '.join(missing)} in the environment"
    return "no API key: set the provider's key in the environment (as litellm reads it)"


def _retry_after(exc: BaseException) -> float | None:
    """The Retry-After header of a 429, wherever litellm kept it."""
    for headers in (
        getattr(exc, "litellm_response_headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        if not headers:
            continue
        value = headers.get("retry-after") or headers.get("Retry-After")
        if value is None:
            continue
        try:
            return float(value)
        except (TypeError, ValueError):
            return None  # an HTTP-date: fall back to our own backoff
    return None


def has_price(call: Call) -> bool:
    """Whether the call's cost will be known: the model is in-process, or a price is set."""
    if local_model.is_local(call.model) or embeddings_local.is_local_embedding(call.model):
        return True
    return _prices(call) is not None


def _prices(call: Call) -> tuple[float, float] | None:
    """Input and output price per token: the call's params, else litellm's price map."""
    input_price = call.params.get("input_cost_per_token")
    output_price = call.params.get("output_cost_per_token")
    if input_price is None or output_price is None:
        try:
            info = load_litellm().get_model_info(call.model)
        except Exception:  # litellm raises for any model missing from its price map
            return None
        input_price, output_price = info.get("input_cost_per_token"), info.get("output_cost_per_token")
    if input_price is None or output_price is None:
        return None
    return float(input_price), float(output_price)


# Output tokens assumed for a call whose params set no max_tokens (dry-run estimates only).
ASSUMED_OUTPUT_TOKENS = 256


def estimate_cost(call: Call) -> float | None:
    """An estimate of a call's cost before making it; None when no price is known.

    Prompt tokens are counted with the model's tokenizer; output tokens are taken at the
    call's `max_tokens` (else ASSUMED_OUTPUT_TOKENS), so the estimate leans high.
    """
    if call.model.startswith("local/"):
        return 0.0
    prices = _prices(call)
    if prices is None:
        return None
    input_price, output_price = prices
    litellm = load_litellm()
    prompt_tokens = litellm.token_counter(model=call.model, messages=list(call.messages))
    output_tokens = (
        call.params.get("max_tokens") or call.params.get("max_completion_tokens") or ASSUMED_OUTPUT_TOKENS
    )
    return float(prompt_tokens * input_price + output_tokens * output_price)
