"""What a run is asked to do: Suite, Case, Target and CheckSpec from the suite files, and
the Job (one result key) with its Call (one request to a model). No I/O here."""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .stats import PassRule


def canonical_json(value: Any) -> str:
    """One stable text for a JSON-able value: the basis of hashes and check labels."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_text(content: Any) -> str:
    """A message's content as text, for judges and transcripts: a string as it is; of a list of
    content parts, each text, and each image as its media type and the hash of its bytes
    (never the bytes themselves), one part a line."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return "" if content is None else str(content)
    return "\n".join(_part_text(part) for part in content)


def _part_text(part: Any) -> str:
    if not isinstance(part, dict):
        return str(part)
    if part.get("type") == "text":
        return str(part.get("text", ""))
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if part.get("type") != "image_url" or not isinstance(url, str):
        return f"[{part.get('type')}]"
    head, comma, data = url.partition(",")
    if not (url.startswith("data:") and head.endswith(";base64") and comma):
        return f"[image {url}]"
    try:
        digest = hashlib.sha256(base64.b64decode(data, validate=True)).hexdigest()[:12]
    except (binascii.Error, ValueError):
        digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return f"[image {head[5:-7] or 'data'} sha256:{digest}]"


def key_matches(key: str, patterns: Sequence[str]) -> bool:
    """`-k` selection: a key matches a glob whole, or contains it (`-k france`); no patterns: all."""
    return not patterns or any(
        fnmatch.fnmatchcase(key, p) or fnmatch.fnmatchcase(key, f"*{p}*") for p in patterns
    )


APP_KINDS = ("python", "http", "exec")


@dataclass(frozen=True)
class Target:
    """One model, or one application (`python:`, `http:`, `exec:`), to run against."""

    id: str
    model: str  # for an application: what it is, e.g. `python:myapp.assistant:answer`
    api_base: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    line: int | None = field(default=None, compare=False)  # in its suite file (for --safe)
    app: dict[str, Any] | None = None  # {"python": ...}, {"http": {...}} or {"exec": {...}}
    cache: Any = None  # an application's `cache:` as written (false, or {key_files: [...]})
    cache_salt: str | None = None  # the hash of its key files, once the plan read them
    concurrency: int | None = None  # at most this many calls to it at once


def app_name(app: dict[str, Any]) -> str:
    """How an application target is named where a model would be: `python:pkg.mod:fn`,
    `http:URL`, `exec:COMMAND`."""
    if "python" in app:
        return f"python:{app['python']}"
    if "http" in app:
        return f"http:{app['http']['url']}"
    return "exec:" + " ".join(app["exec"]["command"])


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """One expected property as written in a suite: `{name: value}`."""

    name: str
    value: Any
    line: int | None = None
    # Set by checks whose label must not change with every field of their value: a judge
    # keeps its label when its rubric is edited, so the edit shows as `stale`, not a new check.
    label_text: str | None = None

    @property
    def label(self) -> str:
        """How the check is named in snapshots and reports: `contains: Paris`."""
        if self.label_text is not None:
            return self.label_text
        value = self.value if isinstance(self.value, str) else canonical_json(self.value)
        return f"{self.name}: {value}"


@dataclass(frozen=True, slots=True)
class Turn:
    """One user turn of a conversation, as loaded: its message (a template) and its checks,
    which grade the assistant's last answer in that turn."""

    user: str
    expect: tuple[CheckSpec, ...] = ()
    line: int | None = None
    images: tuple[dict[str, Any], ...] | None = None  # content parts sent after the text


@dataclass(frozen=True, slots=True)
class Case:
    """One set of template variables plus checks, as loaded (not yet rendered)."""

    id: str
    vars: dict[str, Any]
    expect: tuple[CheckSpec, ...] = ()
    prompt: str | None = None
    system: str | None = None
    messages: tuple[dict[str, Any], ...] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    file: str = ""
    line: int | None = None
    repeat: int | str | None = None  # a number, or `auto`
    max_repeat: int | None = None  # with `auto`: the most samples a key takes
    compare: Any = None  # a rubric or {rubric, model?, params?, api_base?}: see verdicts.pairwise
    pass_rule: PassRule | None = None
    turns: tuple[Turn, ...] | None = None
    # Canned answers to tool calls (an agent loop), and how many calls a turn may take.
    tool_results: dict[str, Any] | None = None
    max_steps: int | None = None
    # The image content parts (data URLs, read at load) that go with the prompt's user message.
    images: tuple[dict[str, Any], ...] | None = None


@dataclass(frozen=True)
class Suite:
    """One suite file, validated."""

    name: str
    path: str
    targets: tuple[Target, ...]
    cases: Sequence[Case]  # a tuple, or a CaseFile: read from its file as it is gone through
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    system: str | None = None
    prompt: str | None = None
    messages: tuple[dict[str, Any], ...] | None = None
    expect: tuple[CheckSpec, ...] = ()
    repeat: int | str | None = None  # a number, or `auto`
    max_repeat: int | None = None  # with `auto`: the most samples a key takes
    compare: Any = None  # a rubric or {rubric, model?, params?, api_base?}: see verdicts.pairwise
    pass_rule: PassRule | None = None
    params_line: int | None = None  # where `params:` is, for errors found once targets are known
    turns: tuple[Turn, ...] | None = None
    tool_results: dict[str, Any] | None = None
    max_steps: int | None = None
    images: tuple[dict[str, Any], ...] | None = None


DEFAULT_MAX_STEPS = 5  # calls a turn of an agent loop may take before it is stopped


@dataclass(frozen=True, slots=True)
class RenderedTurn:
    """A turn ready to send: the user message (rendered) and the checks on its last answer."""

    message: dict[str, Any]
    checks: tuple[CheckSpec, ...] = ()


def result_key(suite: str, case: str, target: str) -> str:
    """`suite/case@target`: what names a result everywhere (reports, -k, snapshots' files)."""
    return f"{suite}/{case}@{target}"


# What a run adds to an app's spec for this machine (where to import it from, its limit):
# not part of what its answers depend on.
_LOCAL_APP_KEYS = frozenset({"root", "concurrency"})


@dataclass(frozen=True, slots=True)
class Call:
    """Everything that shapes a provider response; its hash is the cache key.

    The API key is deliberately absent: it never shapes the answer and must never
    reach disk.
    """

    model: str
    messages: tuple[dict[str, Any], ...]
    params: dict[str, Any]
    api_base: str | None = None
    sample: int = 0
    # "chat" asks for a completion; "embedding" for the vector of the one message's content.
    kind: str = "chat"
    # An application target (`python:`, `http:` or `exec:`): its spec, and the case's vars it
    # is called with. `cache_salt`: the hash of its key files; None: never cached.
    app: dict[str, Any] | None = None
    vars: dict[str, Any] | None = None
    cache_salt: str | None = None
    # cache_key, once computed: a key's call is looked up several times on its way.
    _key: str = field(default="", init=False, repr=False, compare=False)

    def cache_key(self) -> str:
        if self._key:
            return self._key
        payload: dict[str, Any] = {
            "model": self.model,
            "api_base": self.api_base,
            "messages": list(self.messages),
            "params": self.params,
            "sample": self.sample,
        }
        if self.kind != "chat":
            payload["kind"] = self.kind  # chat keys stay as they were before kinds existed
        if self.app is not None:  # an app's answer also depends on its code: the key files' hash
            app = {k: v for k, v in self.app.items() if k not in _LOCAL_APP_KEYS}
            payload |= {"app": app, "vars": self.vars, "cache_salt": self.cache_salt}
        key = hashlib.sha256(canonical_json(payload).encode()).hexdigest()
        object.__setattr__(self, "_key", key)  # frozen: set as the dataclass's own __init__ does
        return key

    @property
    def cacheable(self) -> bool:
        """A model's answer depends on its request alone; an app's also on its code, so an
        app is cached only when its target names the files its answers depend on."""
        return self.app is None or self.cache_salt is not None

    def request_hash(self) -> str:
        """Hash of the rendered prompt and params (not the model): flags `prompt changed`."""
        payload = {"messages": list(self.messages), "params": self.params}
        if self.app is not None:
            payload["vars"] = self.vars
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Job:
    """One result key, ready to run: its call and its rendered checks."""

    suite: str
    case: str
    target: str
    call: Call
    checks: tuple[CheckSpec, ...]
    vars: dict[str, Any]
    suite_path: str = ""
    case_file: str = ""
    case_line: int | None = None
    samples: int = 1  # with `adaptive`, the most it may take
    pass_rule: PassRule = field(default_factory=PassRule)
    # `repeat: auto`: samples are drawn in looks (model.sequential) while the comparison
    # with the snapshot is undecided; `calls()` is the worst case.
    adaptive: bool = False
    # `compare:` as written, then (once resolved) with its judge: {rubric, model, params, api_base?}.
    compare: Any = None
    # A conversation: `call` sends the first user turn; each later turn (its user message
    # and the checks on its last answer) is sent with the whole conversation so far.
    turns: tuple[RenderedTurn, ...] = ()
    tool_results: dict[str, Any] | None = None
    max_steps: int = DEFAULT_MAX_STEPS
    _calls: tuple[Call, ...] = field(default=(), init=False, repr=False, compare=False)

    @property
    def key(self) -> str:
        return result_key(self.suite, self.case, self.target)

    def request_hash(self) -> str:
        """Its call's hash; a conversation's also covers its later turns and canned results,
        so that editing turn 3 flags `prompt changed` too."""
        if not self.is_conversation:
            return self.call.request_hash()
        payload = {
            "call": self.call.request_hash(),
            "turns": [turn.message for turn in self.turns[1:]],
            "tool_results": self.tool_results,
            "max_steps": self.max_steps,
        }
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:12]

    @property
    def is_conversation(self) -> bool:
        """More than one call to answer: several turns, or tool calls answered from the suite."""
        return len(self.turns) > 1 or self.tool_results is not None

    def calls(self) -> list[Call]:
        """One call per sample; the sample index is in each cache key, so samples are independent."""
        if not self._calls:
            # The same Call objects each time: their cache keys are computed once.
            calls = tuple(
                self.call if index == self.call.sample == 0 else replace(self.call, sample=index)
                for index in range(self.samples)
            )
            object.__setattr__(self, "_calls", calls)  # frozen: set as the dataclass's own __init__ does
        return list(self._calls)
