"""Reading GitHub Actions files as GitHub does, and running a composite action's steps here.

- `load_yaml`: YAML as GitHub reads it (1.2 booleans: `on:` is a key, not `True`).
- `Expressions`: the `${{ }}` language, enough of it for our files; anything it does not
  know (a context, a property, a function, a syntax) raises, so a test fails on it rather
  than running a step with a wrong value.
- `run_composite`: a composite action's steps in order, as the runner does: `if:` with the
  implicit `success()`, `env:`, `working-directory:`, bash with `-eo pipefail`, step outputs
  through `GITHUB_OUTPUT`, one step summary; `uses:` steps are not run but their inputs are
  evaluated and recorded, with outputs the test supplies.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# --------------------------------------------------------------------------- YAML


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2's booleans (true/false only), as GitHub's parser."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_yaml(path: Path | str) -> Any:
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_Yaml12Loader)


# --------------------------------------------------------------------------- expressions

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>&&|\|\||==|!=|<=|>=|[!<>().,\[\]])"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)
STATUS_FUNCTIONS = ("always", "success", "failure", "cancelled")


class ExpressionError(AssertionError):
    """An expression this evaluator does not know: the test fails on it."""


def tokens(text: str) -> list[tuple[str, str]]:
    found, at = [], 0
    while at < len(text):
        if not text[at:].strip():
            break
        match = _TOKEN.match(text, at)
        if not match:
            raise ExpressionError(f"cannot read the expression {text!r} at {text[at:]!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        at = match.end()
    return found


@dataclass
class Expressions:
    """Evaluates expressions against `contexts` (name -> nested dicts). `known_outputs`, per
    step id, the outputs that step can set: any other is an unknown expression."""

    contexts: dict[str, Any]
    known_outputs: Mapping[str, set[str]] = field(default_factory=dict)
    failed: bool = False  # a step before failed: success() is false
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def evaluate(self, text: str) -> Any:
        self._tokens, self._at = tokens(text), 0
        value = self._or()
        if self._at != len(self._tokens):
            raise ExpressionError(f"unexpected {self._tokens[self._at][1]!r} in {text!r}")
        return value

    def condition(self, text: str) -> bool:
        """An `if:`: with or without `${{ }}`; without a status function, `success() && (…)`."""
        inner = text.strip()
        whole = re.fullmatch(r"\$\{\{(.*)\}\}", inner, re.S)
        if whole:
            inner = whole.group(1)
        if not any(re.search(rf"\b{name}\s*\(", inner) for name in STATUS_FUNCTIONS):
            inner = f"success() && ({inner})"
        return truthy(self.evaluate(inner))

    def substitute(self, text: str) -> str:
        """Each `${{ … }}` in a string replaced by its value, as GitHub renders it."""
        return re.sub(r"\$\{\{(.*?)\}\}", lambda m: render(self.evaluate(m.group(1))), text, flags=re.S)

    # -- the grammar: or > and > equality > unary > primary

    def _peek(self) -> tuple[str, str]:
        return self._tokens[self._at] if self._at < len(self._tokens) else ("end", "")

    def _take(self, value: str) -> bool:
        if self._peek() == ("op", value):
            self._at += 1
            return True
        return False

    def _expect(self, value: str) -> None:
        if not self._take(value):
            raise ExpressionError(f"expected {value!r}, found {self._peek()[1]!r}")

    def _or(self) -> Any:
        value = self._and()
        while self._take("||"):
            right = self._and()
            value = value if truthy(value) else right
        return value

    def _and(self) -> Any:
        value = self._equality()
        while self._take("&&"):
            right = self._equality()
            value = right if truthy(value) else value
        return value

    def _equality(self) -> Any:
        value = self._unary()
        while self._peek() in (("op", "=="), ("op", "!=")):
            negate = self._peek()[1] == "!="
            self._at += 1
            same = equal(value, self._unary())
            value = not same if negate else same
        return value

    def _unary(self) -> Any:
        if self._take("!"):
            return not truthy(self._unary())
        return self._primary()

    def _primary(self) -> Any:
        kind, text = self._peek()
        self._at += 1
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text) if "." in text else int(text)
        if (kind, text) == ("op", "("):
            value = self._or()
            self._expect(")")
            return value
        if kind != "name":
            raise ExpressionError(f"unexpected {text!r}")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if self._take("("):
            args = []
            if not self._take(")"):
                args.append(self._or())
                while self._take(","):
                    args.append(self._or())
                self._expect(")")
            return self._call(text, args)
        return self._path(text)

    def _call(self, name: str, args: list[Any]) -> Any:
        if name == "always":
            return True
        if name == "success":
            return not self.failed
        if name == "failure":
            return self.failed
        if name == "cancelled":
            return False
        if name == "format":
            template, *values = args
            return re.sub(r"\{(\d+)\}", lambda m: render(values[int(m.group(1))]), str(template))
        if name in self.functions:
            return self.functions[name](*args)
        raise ExpressionError(f"unknown function {name}()")

    def _path(self, name: str) -> Any:
        if name not in self.contexts:
            raise ExpressionError(f"unknown context {name!r}")
        parts = [name]
        while self._take("."):
            kind, text = self._peek()
            if kind != "name":
                raise ExpressionError(f"a property name after {'.'.join(parts)}., found {text!r}")
            self._at += 1
            parts.append(text)
        if parts[0] == "steps":
            return self._step_value(parts)
        value: Any = self.contexts
        for depth, part in enumerate(parts):
            if not isinstance(value, dict) or part not in value:
                raise ExpressionError(f"unknown property {'.'.join(parts[: depth + 1])}")
            value = value[part]
        return value

    def _step_value(self, parts: list[str]) -> Any:
        if len(parts) != 4 or parts[2] != "outputs":
            raise ExpressionError(f"only steps.<id>.outputs.<name> is known, not {'.'.join(parts)}")
        step, name = parts[1], parts[3]
        if step not in self.known_outputs:
            raise ExpressionError(f"no step with the id {step!r}")
        if name not in self.known_outputs[step]:
            raise ExpressionError(f"step {step!r} sets no output {name!r}")
        return self.contexts["steps"].get(step, {}).get("outputs", {}).get(name, "")


def truthy(value: Any) -> bool:
    return value not in (None, False, "", 0)


def equal(a: Any, b: Any) -> bool:
    """GitHub compares strings ignoring case; other types must match here (this evaluator
    does not coerce, so a comparison of a string with a number is an error)."""
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if type(a) is not type(b) and None not in (a, b):
        raise ExpressionError(f"comparing {a!r} with {b!r}: give both the same type")
    return a == b


def render(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def expressions_in(node: Any) -> list[str]:
    """Every `${{ … }}` in a loaded YAML document, inside its strings."""
    if isinstance(node, dict):
        return [e for key, value in node.items() for e in expressions_in(key) + expressions_in(value)]
    if isinstance(node, list):
        return [e for item in node for e in expressions_in(item)]
    if isinstance(node, str):
        return re.findall(r"\$\{\{(.*?)\}\}", node, flags=re.S)
    return []


# --------------------------------------------------------------------------- a composite action


@dataclass
class Step:
    index: int
    id: str
    name: str
    ran: bool
    kind: str  # "run", "uses", "stubbed" (a run step the test stands in for) or "skipped"
    code: int = 0
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)  # a `uses:` step's `with:`, evaluated
    script: str = ""


@dataclass
class ActionRun:
    steps: list[Step]
    outputs: dict[str, str]
    summary: str

    @property
    def failed(self) -> bool:
        return any(step.code != 0 for step in self.steps)

    def step(self, step_id: str) -> Step:
        return next(step for step in self.steps if step.id == step_id)

    def log(self) -> str:
        return "\n".join(
            f"--- {s.id or s.name} ({s.kind}, exit {s.code})\n{s.stdout}{s.stderr}" for s in self.steps
        )


def output_names(step: dict[str, Any], uses_outputs: Mapping[str, dict[str, str]]) -> set[str]:
    """The outputs a step can set: a run step's `NAME=` lines to GITHUB_OUTPUT, or what the
    test says a used action sets."""
    if "uses" in step:
        return set(uses_outputs.get(step["uses"], {}))
    return set(re.findall(r'echo "([A-Za-z0-9_-]+)=[^"]*" >> "\$GITHUB_OUTPUT"', step.get("run", "")))


def parse_output_file(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT's format: NAME=VALUE lines, or NAME<<DELIMITER … DELIMITER."""
    outputs, lines = {}, iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            for item in lines:
                if item == delimiter:
                    break
                body.append(item)
            outputs[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


def run_composite(
    action: dict[str, Any],
    *,
    inputs: Mapping[str, str],
    contexts: dict[str, Any],
    env: Mapping[str, str],
    workspace: Path,
    scratch: Path,
    uses_outputs: Mapping[str, dict[str, str]],
    stubbed: Mapping[str, dict[str, str]],
    functions: Mapping[str, Callable[..., Any]],
    timeout: float = 300,
) -> ActionRun:
    """Run `action`'s steps. `stubbed`: run steps (by id) not run but given these outputs;
    `uses_outputs`: the outputs of each used action (by its `uses:`)."""
    declared = action.get("inputs", {})
    unknown = set(inputs) - set(declared)
    assert not unknown, f"inputs the action does not declare: {sorted(unknown)}"
    steps_spec = action["runs"]["steps"]
    known_outputs = {s["id"]: output_names(s, uses_outputs) for s in steps_spec if "id" in s}
    context = dict(contexts) | {"steps": {}}
    ev = Expressions(context, known_outputs, functions=dict(functions))
    context["inputs"] = {
        name: inputs[name] if name in inputs else ev.substitute(str(spec.get("default", "")))
        for name, spec in declared.items()
    }
    summary_file = scratch / "step_summary.md"
    summary_file.write_text("")
    job_env = dict(env) | {"GITHUB_STEP_SUMMARY": str(summary_file)}
    done: list[Step] = []
    for index, spec in enumerate(steps_spec):
        step_id, name = spec.get("id", ""), spec.get("name", spec.get("uses", ""))
        if "if" in spec and not ev.condition(str(spec["if"])):
            done.append(Step(index, step_id, name, ran=False, kind="skipped"))
            continue
        if "uses" in spec:
            with_values = {k: ev.substitute(render(v)) for k, v in spec.get("with", {}).items()}
            outputs = dict(uses_outputs.get(spec["uses"], {}))
            done.append(
                Step(index, step_id, name, ran=True, kind="uses", inputs=with_values, outputs=outputs)
            )
        else:
            assert spec.get("shell") == "bash", f"step {name!r}: shell must be bash"
            step_env = {k: ev.substitute(render(v)) for k, v in spec.get("env", {}).items()}
            script = ev.substitute(spec["run"])
            workdir = workspace / ev.substitute(str(spec.get("working-directory", ".")))
            if step_id in stubbed:
                outputs = dict(stubbed[step_id])
                done.append(
                    Step(
                        index,
                        step_id,
                        name,
                        ran=True,
                        kind="stubbed",
                        outputs=outputs,
                        env=step_env,
                        script=script,
                    )
                )
            else:
                done.append(
                    _run_bash(index, step_id, name, script, job_env | step_env, workdir, scratch, timeout)
                )
                ev.failed = ev.failed or done[-1].code != 0
        if step_id:
            context["steps"][step_id] = {"outputs": done[-1].outputs}
    outputs = {
        name: ev.substitute(str(spec.get("value", ""))) for name, spec in action.get("outputs", {}).items()
    }
    return ActionRun(done, outputs, summary_file.read_text())


def _run_bash(
    index: int,
    step_id: str,
    name: str,
    script: str,
    env: dict[str, str],
    workdir: Path,
    scratch: Path,
    timeout: float,
) -> Step:
    script_file = scratch / f"step-{index}.sh"
    script_file.write_text(script)
    output_file = scratch / f"output-{index}"
    output_file.write_text("")
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],  # GitHub's bash
        cwd=workdir,
        env=env | {"GITHUB_OUTPUT": str(output_file)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Step(
        index,
        step_id,
        name,
        ran=True,
        kind="run",
        code=done.returncode,
        stdout=done.stdout,
        stderr=done.stderr,
        outputs=parse_output_file(output_file.read_text()),
        env=env,
        script=script,
    )


def clean_environment() -> dict[str, str]:
    """This process's environment without anything a CI, prompttest or a provider set."""
    return {
        k: v
        for k, v in os.environ.items()
        if not (
            k == "CI"
            or k.startswith(("GITHUB_", "RUNNER_", "PROMPTTEST_", "INPUT_"))
            or k.endswith("_API_KEY")
        )
    }
