"""Images in messages: `images: [receipt.png]` on a user message or next to `prompt:`, and
`content:` written as a list of content parts, as litellm takes it.

An image is read when the suite is loaded, relative to the suite file, and sent as an OpenAI
content part holding a base64 data URL: the bytes are in the message, so they enter the
cache key and the `request` hash; the path and the file's time never do. The media type
comes from the file's first bytes (PNG, JPEG, GIF or WEBP). With `--safe`, an image outside
the repository is refused, unread, like a cases file.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import SuiteError
from ..io.yamlsource import Lines, YamlPath, line_of
from .safety import Refusal, outside_refusal, refuse_all
from .template import render

MAX_IMAGE_BYTES = 20 * 1024 * 1024  # OpenAI's limit for an image in a request
IMAGES_HINT = "images: [receipt.png] names image files relative to the suite (PNG, JPEG, GIF or WEBP)"
PARTS_FORM = '[{type: text, text: "..."}, {type: image_url, image_url: {url: "https://..."}}]'

Part = dict[str, Any]


def media_type(head: bytes) -> str | None:
    """The media type of an image from its first 12 bytes; None for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_part(data: bytes, kind: str) -> Part:
    """The OpenAI content part of an image: its bytes as a base64 data URL."""
    url = f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"
    return {"type": "image_url", "image_url": {"url": url}}


def with_images(text: str, images: Sequence[Part] | None) -> str | list[Part]:
    """A user message's content: the text as it is, or a text part followed by the images."""
    return [{"type": "text", "text": text}, *images] if images else text


def render_content(content: Any, vars: dict[str, Any], *, where: str, file: str, line: int | None) -> Any:
    """A message's content with the case variables filled in: a string, or the text of each
    text part (other parts are sent as written)."""
    if isinstance(content, str):
        return render(content, vars, where=where, file=file, line=line)
    return [
        {**part, "text": render(part["text"], vars, where=where, file=file, line=line)}
        if part.get("type") == "text"
        else part
        for part in content
    ]


def refuse_one(refusal: Refusal) -> None:
    refuse_all([refusal])


class Images:
    """Reads the images one suite file names, each file once, and checks content parts."""

    def __init__(
        self,
        file: str,
        lines: Lines,
        suite_dir: Path,
        *,
        confine_to: Path | None = None,
        refuse: Callable[[Refusal], None] = refuse_one,
    ) -> None:
        self.file, self.lines, self.suite_dir = file, lines, suite_dir
        self.confine_to, self.refuse = confine_to, refuse
        self._read: dict[Path, Part] = {}

    def of(self, node: Mapping[str, Any], path: YamlPath) -> tuple[Part, ...] | None:
        """The `images:` of a suite or case (they go with its `prompt:`), as content parts."""
        if "images" not in node:
            return None
        for other in ("messages", "turns"):
            if other in node:
                raise self._error(
                    f"images: go with prompt:, not with {other}:",
                    path + ("images",),
                    hint="in messages:, put images: on the user message: "
                    "{role: user, content: ..., images: [receipt.png]}",
                )
        return self._parts(node["images"], path + ("images",))

    def messages(self, value: Sequence[Mapping[str, Any]] | None, path: YamlPath) -> tuple[Part, ...] | None:
        """A `messages:` list, each message's `images:` read into its content parts."""
        if value is None:
            return None
        return tuple(self._message(m, path + ("messages", i)) for i, m in enumerate(value))

    def _message(self, message: Mapping[str, Any], at: YamlPath) -> Part:
        content = message["content"]
        if isinstance(content, list):
            self._check_parts(content, at + ("content",))
        if "images" not in message:
            return dict(message)
        if message["role"] != "user":
            role = message["role"]
            raise self._error(f"images: go on user messages, not on {role} ones", at + ("images",))
        images = self._parts(message["images"], at + ("images",))
        parts = [*content, *images] if isinstance(content, list) else with_images(content, images)
        return {key: value for key, value in message.items() if key != "images"} | {"content": parts}

    def _check_parts(self, parts: list[Any], at: YamlPath) -> None:
        for index, part in enumerate(parts):  # each a mapping with a type (the schema says so)
            if part["type"] == "text" and not isinstance(part.get("text"), str):
                raise self._error("a text content part needs a text string", at + (index,), hint=PARTS_FORM)

    def _parts(self, paths: list[str], at: YamlPath) -> tuple[Part, ...]:
        parts = []
        for index, written in enumerate(paths):
            part = self._image(written, at + (index,))
            if part is not None:
                parts.append(part)
        return tuple(parts)

    def _image(self, written: str, at: YamlPath) -> Part | None:
        """One image's part (None: --safe refused it, and it is not read)."""
        if "\0" in written:  # open() would raise ValueError
            raise self._error("the image file name contains a NUL character", at)
        path = self.suite_dir / written
        if self.confine_to is not None:
            refusal = outside_refusal(
                path, self.confine_to, what="the image", file=self.file, line=line_of(self.lines, at)
            )
            if refusal is not None:
                self.refuse(refusal)
                return None
        real = path.resolve()
        if real not in self._read:
            self._read[real] = self._load(path, written, at)
        return self._read[real]

    def _load(self, path: Path, written: str, at: YamlPath) -> Part:
        try:
            size = path.stat().st_size
            if size > MAX_IMAGE_BYTES:
                raise self._error(
                    f"image '{written}' is {size / 2**20:.1f} MB; the limit is {MAX_IMAGE_BYTES // 2**20} MB",
                    at,
                    hint="make it smaller (providers refuse larger images too)",
                )
            data = path.read_bytes()
        except FileNotFoundError:
            message = f"image '{written}' does not exist (looked for {path.as_posix()})"
            raise self._error(message, at, hint=IMAGES_HINT) from None
        except OSError as exc:
            raise self._error(f"cannot read image '{written}': {exc.strerror or exc}", at) from None
        kind = media_type(data[:12])
        if kind is None:
            raise self._error(f"image '{written}' is not a PNG, JPEG, GIF or WEBP file", at, hint=IMAGES_HINT)
        return image_part(data, kind)

    def _error(self, message: str, at: YamlPath, *, hint: str | None = None) -> SuiteError:
        return SuiteError(message, file=self.file, line=line_of(self.lines, at), hint=hint)
