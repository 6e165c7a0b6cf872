"""Judged checks: `llm_judge` (a rubric graded by a judge model) and `similar` (closeness
to a reference text by embeddings, or lexically when no embedding model is set).

Both need answers from elsewhere: they list the calls they need (`calls`), the run
answers them through the cache and provider path of every call, and the check reads the
answers from `ctx.answer_for`. What graded a check (`judge`) goes into the snapshot, so
a new judge is told apart from a new output: its flips are `stale`, not regressions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from prompttest.checks import Defaults, judge, quote, register
from prompttest.checks.similarity import lexical_similarity
from prompttest.errors import SuiteError
from prompttest.model import Call, CheckContext, CheckError, canonical_json
from prompttest.model.outputs import answer_text

JUDGE_FIELDS = frozenset({"rubric", "model", "params", "threshold", "name", "api_base"})
SIMILAR_FIELDS = frozenset({"to", "threshold", "method", "model", "api_base"})
METHODS = ("embedding", "lexical")


# ------------------------------------------------------------------------ llm_judge


def _prepare_judge(value: Any) -> str | None:
    if isinstance(value, str):
        return None if value.strip() else "empty rubric"
    if not isinstance(value, dict):
        return "expected a rubric, or {rubric, model?, params?, threshold?, name?}"
    unknown = sorted(set(value) - JUDGE_FIELDS)
    if unknown:
        return f"unknown field {unknown[0]!r}; llm_judge takes {', '.join(sorted(JUDGE_FIELDS))}"
    if not isinstance(value.get("rubric"), str) or not value["rubric"].strip():
        return "needs a non-empty `rubric:`"
    return _threshold_problem(value) or _params_problem(value)


def _judge_value(value: Any) -> dict[str, Any]:
    return {"rubric": value} if isinstance(value, str) else dict(value)


def _judge_label(value: Any, nth: int) -> str:
    """`llm_judge: polite` when named, else by position: editing the rubric keeps the label."""
    name = _judge_value(value).get("name")
    return f"llm_judge: {name}" if name else f"llm_judge: #{nth}"


def _resolve_judge(value: Any, defaults: Defaults) -> dict[str, Any]:
    missing = SuiteError(
        "llm_judge has no judge model",
        hint='set `model:` in the check, or a default judge: judge = "openai/gpt-4o-mini" '
        "under [tool.prompttest] in pyproject.toml (or PROMPTTEST_JUDGE)",
    )
    data = _with_model(_judge_value(value), defaults.judge, defaults.judge_api_base, missing)
    data["params"] = {**judge.DEFAULT_PARAMS, **data.get("params", {})}
    return data


def _judge_call(value: dict[str, Any], output: str, ctx: CheckContext) -> Call:
    # The judge grades the whole answer: a rubric on tool calls must see them.
    return judge.judge_call(
        rubric=value["rubric"],
        prompt=ctx.prompt,
        output=ctx.transcript or _with_metadata(answer_text(output, ctx.tool_calls, ctx.refusal), ctx),
        model=value["model"],
        params=value["params"],
        api_base=value.get("api_base"),
    )


def _with_metadata(text: str, ctx: CheckContext) -> str:
    """An app's answer with what it returned besides (retrieved passages...): a rubric may ask
    whether the answer is supported by them."""
    if ctx.metadata is None:
        return text
    return f"{text}\n[metadata] {canonical_json(ctx.metadata)}"


def _judge_calls(value: Any, output: str, ctx: CheckContext) -> list[Call]:
    return [_judge_call(value, output, ctx)]


def _provenance(value: Any) -> dict[str, Any]:
    return {"model": value["model"], "params": value["params"], "rubric": judge.rubric_hash(value["rubric"])}


@register(
    "llm_judge",
    prepare=_prepare_judge,
    label=_judge_label,
    resolve=_resolve_judge,
    calls=_judge_calls,
    judge=_provenance,
)
def llm_judge(output: str, value: Any, ctx: CheckContext) -> tuple[bool, str, float | None]:
    answer = ctx.answer_for(_judge_call(value, output, ctx))
    judgement = judge.parse_judgement(answer.text)
    passed, reason = judge.decide(judgement, value.get("threshold"))
    # With a threshold the score is what passes: it is kept, and its drift watched.
    return passed, reason, judgement.score if value.get("threshold") is not None else None


# ------------------------------------------------------------------------ similar


def _prepare_similar(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "expected {to: reference text, threshold: 0..1, method?: embedding|lexical, model?}"
    unknown = sorted(set(value) - SIMILAR_FIELDS)
    if unknown:
        return f"unknown field {unknown[0]!r}; similar takes {', '.join(sorted(SIMILAR_FIELDS))}"
    if not isinstance(value.get("to"), str) or not value["to"].strip():
        return "needs a non-empty reference text `to:`"
    if "threshold" not in value:
        return "needs a `threshold:` from 0 to 1 (e.g. 0.8)"
    if value.get("method", "embedding") not in METHODS:
        return f"method {quote(value['method'])} is not one of {', '.join(METHODS)}"
    if value.get("method") == "lexical" and "model" in value:
        return "the lexical method uses no model: drop `model:` or use method: embedding"
    return _threshold_problem(value)


def _similar_label(value: Any, nth: int) -> str:
    """Named by what it asks (reference and threshold), not by how it is measured."""
    return f"similar: {canonical_json({'to': value['to'], 'threshold': value['threshold']})}"


def _resolve_similar(value: Any, defaults: Defaults) -> dict[str, Any]:
    data = dict(value)
    method = data.get("method") or ("embedding" if data.get("model") or defaults.embedding else "lexical")
    data["method"] = method
    if method != "embedding":
        return data
    missing = SuiteError(
        "similar asks for method: embedding but no embedding model is set",
        hint='set `model:` in the check, or embedding = "local/all-minilm-l6-v2" (offline) '
        "or a litellm embedding model under [tool.prompttest]",
    )
    return _with_model(data, defaults.embedding, defaults.embedding_api_base, missing)


def embedding_call(text: str, model: str, api_base: str | None) -> Call:
    return Call(
        model=model,
        messages=({"role": "user", "content": text},),
        params={},
        api_base=api_base,
        kind="embedding",
    )


def _similar_calls(value: Any, output: str, ctx: CheckContext) -> list[Call]:
    if value["method"] != "embedding" or not output.strip():
        return []
    return [embedding_call(text, value["model"], value.get("api_base")) for text in (value["to"], output)]


def _similar_judge(value: Any) -> dict[str, Any]:
    if value["method"] == "embedding":
        return {"method": "embedding", "model": value["model"]}
    return {"method": "lexical"}


@register(
    "similar",
    prepare=_prepare_similar,
    label=_similar_label,
    resolve=_resolve_similar,
    calls=_similar_calls,
    judge=_similar_judge,
)
def similar(output: str, value: Any, ctx: CheckContext) -> tuple[bool, str] | tuple[bool, str, float]:
    threshold = float(value["threshold"])
    if not output.strip():
        return False, "output is empty"
    if value["method"] == "lexical":
        score, how = lexical_similarity(value["to"], output), "lexical similarity"
    else:
        vectors = [
            _vector(ctx.answer_for(call).embedding, call) for call in _similar_calls(value, output, ctx)
        ]
        score, how = cosine(*vectors), "cosine similarity"
    passed = score >= threshold
    reason = f"{how} {score:.3f} {'>=' if passed else '<'} {threshold:g} to {quote(value['to'], 40)}"
    return passed, reason, score


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) != len(b):
        raise CheckError(f"the embeddings have different sizes ({len(a)} and {len(b)})")
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    if norm == 0:
        raise CheckError("an embedding is all zeros")
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm


def _vector(vector: tuple[float, ...] | None, call: Call) -> tuple[float, ...]:
    if not vector:
        raise CheckError(f"{call.model} returned no embedding")
    return vector


# ------------------------------------------------------------------------ shared


def _with_model(
    data: dict[str, Any], model: str, api_base: str | None, missing: SuiteError
) -> dict[str, Any]:
    """The check's own model, else the project's default (with its endpoint), else `missing`."""
    if not data.get("model"):
        if not model:
            raise missing
        data["model"] = model
        data.setdefault("api_base", api_base)
    return data


def _threshold_problem(value: dict[str, Any]) -> str | None:
    threshold = value.get("threshold")
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        return f"threshold must be a number from 0 to 1, got {quote(threshold)}"
    return None


def _params_problem(value: dict[str, Any]) -> str | None:
    params = value.get("params", {})
    if not isinstance(params, dict):
        return "params must be a mapping"
    if any("key" in str(name).lower() for name in params):
        return "params must not hold keys: keys come from the environment"
    return None
