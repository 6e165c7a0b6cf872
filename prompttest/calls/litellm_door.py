"""The lazy door to litellm: the one module that imports it, once, when a call needs it.

Set up so it never reaches for the network on its own, never prints banners or pricing
notes, and knows `local/...` (the in-process model) as a provider of its own.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..errors import ProviderSetupError
from .local import llama

_litellm: Any = None
_litellm_lock = threading.Lock()


def load_litellm() -> Any:
    """litellm, imported and set up on first use (thread-safe: models are checked in threads)."""
    if _litellm is None:
        with _litellm_lock:
            if _litellm is None:
                _import_litellm()
    return _litellm


def loaded_litellm() -> Any | None:
    """litellm if a call already imported it, else None (closing clients must not import it)."""
    return _litellm


def prepare_requests_inline(loop: asyncio.AbstractEventLoop) -> None:
    """Let litellm prepare each request on the event loop's thread instead of a thread's.

    `litellm.acompletion` builds every request in `run_in_executor(None, ...)`: CPU work,
    no I/O for the providers we call. On a thread it contends for the GIL with the loop,
    each waiting up to the 5 ms switch interval: at 16 calls in flight that added ~25 ms
    to every call (1,000 calls at -j 16 in one process that only calls: 5.9 s, inline
    4.2 s). Used by call workers; a run's own process is CPU-bound at that rate anyway.
    Everything else handed to the default executor (host name lookups, `to_thread`) still
    runs on threads.
    """
    loop.set_default_executor(_PrepareInline(thread_name_prefix="asyncio"))


class _PrepareInline(ThreadPoolExecutor):
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if not _is_request_preparation(fn):
            return super().submit(fn, *args, **kwargs)
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the awaiting coroutine, as from a thread
            future.set_exception(exc)
        return future


def _is_request_preparation(fn: Callable[..., Any]) -> bool:
    """`partial(context.run, partial(litellm.main.completion, ...))`, as acompletion sends it."""
    if _litellm is None or not isinstance(fn, functools.partial) or not fn.args:
        return False
    inner = fn.args[0]
    main = sys.modules.get("litellm.main")
    return (
        isinstance(getattr(fn.func, "__self__", None), contextvars.Context)
        and isinstance(inner, functools.partial)
        and main is not None
        and inner.func is main.completion
    )


def _import_litellm() -> None:
    global _litellm
    # Without this, the import fetches a price map from the internet and, offline,
    # retries in the background and sometimes crashes the process.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # Its modules hold hundreds of thousands of objects that live as long as the process:
    # out of the collector's sight, each full collection is no longer a scan of all of them.
    gc.freeze()
    litellm.suppress_debug_info = True  # else every error prints a banner on stdout
    litellm.telemetry = False
    logging.getLogger("LiteLLM").addFilter(_not_a_pricing_note)
    _register_local_models(litellm)
    _litellm = litellm


def _not_a_pricing_note(record: logging.LogRecord) -> bool:
    """Drop litellm's warning that a per-target price (`input_cost_per_token` in params) is
    not in its price map: that is what per-target prices are for, and it came on every run."""
    return "has custom pricing" not in str(record.msg)


def _register_local_models(litellm: Any) -> None:
    """Make `local/...` a litellm provider (idempotent)."""
    if any(item.get("provider") == llama.PROVIDER for item in litellm.custom_provider_map):
        return
    litellm.custom_provider_map.append(
        {"provider": llama.PROVIDER, "custom_handler": _local_handler_class(litellm)()}
    )


def _local_handler_class(litellm: Any) -> type:
    """The litellm.CustomLLM subclass that answers `local/...` with the in-process model."""
    from litellm.llms.custom_llm import CustomLLMError

    def answer(
        model: str, messages: list[dict[str, Any]], model_response: Any, params: dict[str, Any]
    ) -> Any:
        if model not in llama.MODELS:
            raise CustomLLMError(404, f"unknown local model '{llama.PROVIDER}/{model}'")
        try:
            request = llama.build_request(messages, params)
        except ValueError as exc:
            raise CustomLLMError(400, str(exc)) from None
        try:
            done = llama.generate(request)
        except ProviderSetupError as exc:
            # 404: the same for every call of this model, so the runner stops calling it.
            raise CustomLLMError(404, f"{exc.message}. {exc.hint}") from None
        except ValueError as exc:  # e.g. a prompt longer than the context window
            raise CustomLLMError(400, str(exc)) from None
        model_response.choices[0].message.content = done.text
        model_response.choices[0].finish_reason = done.finish_reason
        model_response.model = f"{llama.PROVIDER}/{model}"
        model_response.usage = litellm.Usage(
            prompt_tokens=done.prompt_tokens,
            completion_tokens=done.completion_tokens,
            total_tokens=done.prompt_tokens + done.completion_tokens,
        )
        return model_response

    class LocalModelHandler(litellm.CustomLLM):  # type: ignore[misc, name-defined]
        """Answers `local/...` calls with the in-process model."""

        def completion(  # type: ignore[override]
            self,
            *,
            model: str,
            messages: list[dict[str, Any]],
            model_response: Any,
            optional_params: dict[str, Any],
            **_: Any,
        ) -> Any:
            return answer(model, messages, model_response, optional_params)

        async def acompletion(  # type: ignore[override]
            self,
            *,
            model: str,
            messages: list[dict[str, Any]],
            model_response: Any,
            optional_params: dict[str, Any],
            **_: Any,
        ) -> Any:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                llama.worker(), answer, model, messages, model_response, optional_params
            )

        def streaming(self, **_: Any) -> Any:  # type: ignore[override]
            raise CustomLLMError(400, f"{llama.PROVIDER}/ models do not stream")

        async def astreaming(self, **_: Any) -> Any:  # type: ignore[override]
            raise CustomLLMError(400, f"{llama.PROVIDER}/ models do not stream")

    return LocalModelHandler
