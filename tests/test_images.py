"""Images in messages, end to end: the real CLI against the test server.

`images:` name files relative to the suite; they are sent as base64 data URLs in OpenAI
content parts, so their bytes (never their path or time) are in the cache key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from conftest import Project
from fake_server import Reply, Status

from prompttest.model import Call
from prompttest.model.inputs import content_text
from prompttest.suites.images import MAX_IMAGE_BYTES
from prompttest.suites.jobs import render_case
from prompttest.suites.loading import load_suite


def png(rgb: tuple[int, int, int]) -> bytes:
    """A real 1x1 PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + bytes(rgb))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


RED, BLUE = png((255, 0, 0)), png((0, 0, 255))


def data_url(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def image(data: bytes, kind: str = "image/png") -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": data_url(data, kind)}}


RECEIPTS = """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    system: You read receipts.
    prompt: "What is the total of this {{ what }}?"
    cases:
      - id: lunch
        vars: {what: receipt}
        images: %s
        expect: [{contains: total}]
"""


def write(project: Project, name: str, data: bytes) -> None:
    path = project.root / "suites" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_images_are_sent_as_data_urls_in_content_parts(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project, "receipts/lunch.png", RED)
    project.suite("receipts", RECEIPTS % "[receipts/lunch.png]")
    result = project.run("run", capsys=capsys)
    assert result.code == 0, result.out + result.err
    (request,) = project.server.requests
    assert request.json["messages"] == [
        {"role": "system", "content": "You read receipts."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "What is the total of this receipt?"}, image(RED)],
        },
    ]
    url = request.json["messages"][1]["content"][1]["image_url"]["url"]
    assert base64.b64decode(url.removeprefix("data:image/png;base64,")) == RED
    snapshot = project.snapshot("receipts")
    assert "output: 'echo: What is the total of this receipt?'" in snapshot
    assert base64.b64encode(RED).decode()[:40] not in snapshot
    assert "lunch.png" not in snapshot


def test_the_same_bytes_under_another_path_come_from_the_cache_and_new_bytes_are_sent(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project, "lunch.png", RED)
    project.suite("receipts", RECEIPTS % "[lunch.png]")
    assert project.run("run", capsys=capsys).code == 0
    assert project.server.count == 1

    # Moved, renamed, and touched: the same bytes, the same cache key.
    (project.root / "suites" / "lunch.png").unlink()
    write(project, "scans/2024/receipt-0001.png", RED)
    os.utime(project.root / "suites" / "scans/2024/receipt-0001.png", (1, 1))
    project.suite("receipts", RECEIPTS % "[scans/2024/receipt-0001.png]")
    result = project.run("run", capsys=capsys)
    assert result.code == 0, result.out + result.err
    assert project.server.count == 1 and "1 cached" in result.out

    # Other bytes at that path: a new request, with the new image.
    write(project, "scans/2024/receipt-0001.png", BLUE)
    result = project.run("run", "--json", "r.json", capsys=capsys)
    assert result.code == 0, result.out + result.err
    assert project.server.count == 2
    assert project.server.requests[-1].json["messages"][1]["content"][1] == image(BLUE)
    assert "prompt changed" in json.loads((project.root / "r.json").read_text())["results"][0]["flags"]


def test_the_cache_key_holds_the_bytes_not_the_path(tmp_path: Path) -> None:
    def key(name: str, data: bytes) -> str:
        (tmp_path / name).write_bytes(data)
        suite = tmp_path / "s.yaml"
        suite.write_text(f"target: openai/fake\nprompt: Total?\nimages: [{name}]\ncases: [{{id: a}}]\n")
        loaded = load_suite(suite)
        messages = render_case(loaded, loaded.cases[0])[0]
        return Call(model="openai/fake", messages=messages, params={}).cache_key()

    assert key("a.png", RED) == key("b.png", RED)
    assert key("a.png", RED) != key("a.png", BLUE)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (RED, "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00rest", "image/jpeg"),
        (b"GIF89a\x01\x00\x01\x00rest", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 rest", "image/webp"),
    ],
)
def test_the_media_type_comes_from_the_bytes_not_the_name(tmp_path: Path, data: bytes, kind: str) -> None:
    (tmp_path / "picture.png").write_bytes(data)
    suite = tmp_path / "s.yaml"
    suite.write_text("target: openai/fake\nprompt: What is it?\nimages: [picture.png]\ncases: [{id: a}]\n")
    loaded = load_suite(suite)
    messages = render_case(loaded, loaded.cases[0])[0]
    assert messages == (
        {"role": "user", "content": [{"type": "text", "text": "What is it?"}, image(data, kind)]},
    )


MESSAGES = """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    cases:
      - id: parts
        vars: {what: receipt, total: "12.50"}
        messages:
          - {role: system, content: "You read {{ what }}s."}
          - role: user
            content:
              - {type: text, text: "Is the total of this {{ what }} {{ total }}?"}
              - {type: image_url, image_url: {url: "https://example.com/{{ what }}.png", detail: low}}
            images: [lunch.png]
          - {role: assistant, content: "Yes."}
          - {role: user, content: "And this {{ what }}?", images: [lunch.png, dinner.png]}
"""


def test_content_part_lists_and_images_on_messages(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project, "lunch.png", RED)
    write(project, "dinner.png", BLUE)
    project.suite("parts", MESSAGES)
    result = project.run("run", capsys=capsys)
    assert result.code == 0, result.out + result.err
    (request,) = project.server.requests
    assert request.json["messages"] == [
        {"role": "system", "content": "You read receipts."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Is the total of this receipt 12.50?"},
                # Parts other than text are sent as written: no variables, no files read.
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/{{ what }}.png", "detail": "low"},
                },
                image(RED),
            ],
        },
        {"role": "assistant", "content": "Yes."},
        {"role": "user", "content": [{"type": "text", "text": "And this receipt?"}, image(RED), image(BLUE)]},
    ]
    assert "output: 'echo: And this receipt?'" in project.snapshot("parts")


SUITE_IMAGES = """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    prompt: "Describe it."
    images: [logo.png]
    cases:
      - id: suite-image
      - id: own-prompt
        prompt: "Describe it in {{ n }} words."
        vars: {n: 3}
      - id: own-image
        images: [photo.png]
      - id: no-image
        images: []
"""


def test_suite_images_go_with_every_prompt_unless_a_case_has_its_own(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project, "logo.png", RED)
    write(project, "photo.png", BLUE)
    project.suite("described", SUITE_IMAGES)
    result = project.run("run", capsys=capsys)
    assert result.code == 0, result.out + result.err
    sent = sorted(json.dumps(r.json["messages"][-1]["content"]) for r in project.server.requests)
    assert sent == sorted(
        json.dumps(content)
        for content in (
            [{"type": "text", "text": "Describe it."}, image(RED)],
            [{"type": "text", "text": "Describe it in 3 words."}, image(RED)],
            [{"type": "text", "text": "Describe it."}, image(BLUE)],
            "Describe it.",  # images: [] is no image: the plain prompt, as before images existed
        )
    )


def test_suite_images_go_with_the_rows_of_a_cases_file(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project, "logo.png", RED)
    (project.root / "suites" / "rows.csv").write_text("id,style\nshort,briefly\nlong,at length\n")
    project.suite(
        "described",
        """\
        target: {id: fake, model: openai/fake, api_base: "{api_base}"}
        prompt: "Describe it {{ style }}."
        images: [logo.png]
        cases: rows.csv
        """,
    )
    result = project.run("run", capsys=capsys)
    assert result.code == 0, result.out + result.err
    sent = sorted(json.dumps(r.json["messages"]) for r in project.server.requests)
    text = [{"type": "text", "text": f"Describe it {how}."} for how in ("briefly", "at length")]
    assert sent == sorted(json.dumps([{"role": "user", "content": [part, image(RED)]}]) for part in text)


@pytest.mark.parametrize(
    ("images", "line", "message"),
    [
        ("[missing.png]", 7, "image 'missing.png' does not exist (looked for "),
        ("[notes.txt]", 7, "image 'notes.txt' is not a PNG, JPEG, GIF or WEBP file"),
        ("\n          - lunch.png\n          - notes.txt", 9, "image 'notes.txt' is not a PNG"),
        ("[big.png]", 7, "image 'big.png' is 20.0 MB; the limit is 20 MB"),
        ("[folder]", 7, "cannot read image 'folder'"),
    ],
)
def test_a_bad_image_is_a_suite_error_at_its_line(
    project: Project, capsys: pytest.CaptureFixture[str], images: str, line: int, message: str
) -> None:
    write(project, "lunch.png", RED)
    write(project, "notes.txt", b"total: 12.50\n")
    (project.root / "suites" / "folder").mkdir()
    with (project.root / "suites" / "big.png").open("wb") as big:  # sparse: nothing is written
        big.truncate(MAX_IMAGE_BYTES + 1)
    project.suite("receipts", RECEIPTS % images)
    result = project.run("run", capsys=capsys)
    assert result.code == 2
    assert f"receipts.yaml:{line}:" in result.err and message in result.err, result.err
    assert project.server.count == 0


@pytest.mark.parametrize(
    ("suite", "message"),
    [
        (
            "cases:\n  - id: a\n    messages: [{role: assistant, content: hi, images: [lunch.png]}]",
            "images: go on user messages, not on assistant ones",
        ),
        (
            "cases:\n  - id: a\n    messages: [{role: user, content: hi}]\n    images: [lunch.png]",
            "images: go with prompt:, not with messages:",
        ),
        (
            "turns: [{user: hi}]\nimages: [lunch.png]\ncases: [{id: a}]",
            "images: go with prompt:, not with turns:",
        ),
        (
            "messages: [{role: user, content: hi}]\ncases:\n  - id: a\n    images: [lunch.png]",
            "case 'a' sets images: but its messages come from the suite's messages:",
        ),
        (
            "turns: [{user: hi}]\ncases:\n  - id: a\n    images: [lunch.png]",
            "case 'a' sets images: but its messages come from the suite's turns:",
        ),
        (
            "cases:\n  - id: a\n    messages: [{role: user, content: [{type: text}]}]",
            "a text content part needs a text string",
        ),
        (
            "cases:\n  - id: a\n    messages: [{role: user, content: [{text: hi}]}]",
            "'type'",
        ),
        ("prompt: hi\nimages: receipt.png\ncases: [{id: a}]", "images"),
    ],
)
def test_images_in_the_wrong_place_are_suite_errors(
    project: Project, capsys: pytest.CaptureFixture[str], suite: str, message: str
) -> None:
    write(project, "lunch.png", RED)
    project.suite("placed", "target: openai/fake\n" + suite + "\n")
    result = project.run("validate", capsys=capsys)
    assert result.code == 2
    assert message in result.err and "placed.yaml:" in result.err, result.err


def test_safe_refuses_images_outside_the_repository_unread_with_every_other_refusal(
    project: Project, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.png"
    outside.write_bytes(RED)
    try:
        project.suite(
            "receipts",
            f"""\
            target: {{id: fake, model: openai/fake, api_base: "{{api_base}}"}}
            prompt: "Total?"
            cases:
              - id: outside
                images: [../../{outside.name}]
              - id: never-there
                messages: [{{role: user, content: hi, images: [../../{tmp_path.name}-gone.png]}}]
            """,
        )
        result = project.run("run", "--safe", capsys=capsys)
        assert result.code == 2 and project.server.count == 0
        assert "--safe refused 3 thing(s)" in result.err, result.err
        assert "receipts.yaml:5: the image '" in result.err and f"{outside.name}' is outside" in result.err
        # Refused before it is read: a missing file outside is refused, not reported missing.
        assert "receipts.yaml:7: the image '" in result.err and "-gone.png' is outside" in result.err
        assert "target 'fake' sets api_base" in result.err  # every refusal at once
        assert "does not exist" not in result.err

        project.suite("receipts", RECEIPTS % f"[../../{outside.name}]")  # trusted: read as asked
        assert project.run("run", capsys=capsys).code == 0
        assert project.server.requests[0].json["messages"][1]["content"][1] == image(RED)
    finally:
        outside.unlink()


def test_an_image_inside_the_repository_is_allowed_by_safe(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.root / "fixtures").mkdir()
    (project.root / "fixtures" / "lunch.png").write_bytes(RED)
    project.suite("receipts", RECEIPTS % "[../fixtures/lunch.png]")
    result = project.run(
        "run", "--safe", "-m", "openai/fake", "--api-base", project.server.url, capsys=capsys
    )
    assert result.code == 0, result.out + result.err
    assert project.server.requests[0].json["messages"][1]["content"][1] == image(RED)


def test_a_model_that_takes_no_images_fails_with_the_providers_error(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project, "lunch.png", RED)
    project.suite("receipts", RECEIPTS % "[lunch.png]")
    refusal = {
        "error": {"message": "this model does not support image inputs", "type": "invalid_request_error"}
    }
    project.server.reply = lambda request: Status(400, body=refusal)
    result = project.run("run", "--retries", "0", "--json", "r.json", capsys=capsys)
    assert result.code == 3, result.out + result.err
    key = json.loads((project.root / "r.json").read_text())["results"][0]
    assert key["verdict"] == "error" and "does not support image inputs" in key["error"]


AGENT = """\
    target: {id: fake, model: openai/fake, api_base: "{api_base}"}
    tools: [{type: function, function: {name: read_total}}]
    tool_results: {read_total: {total: "12.50"}}
    prompt: "What is the total?"
    images: [lunch.png]
    cases: [{id: lunch, expect: [{contains: "12.50"}]}]
"""


def receipt_agent(request: dict[str, Any]) -> Reply:
    messages = request["messages"]
    if messages[-1]["role"] == "tool":
        return Reply(f"The total is {json.loads(messages[-1]['content'])['total']}.")
    return Reply(None, tool_calls=(("read_total", {}),))


def test_a_conversation_snapshot_names_its_images_by_hash_not_bytes(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project, "lunch.png", RED)
    project.suite("agent", AGENT)
    project.server.reply = receipt_agent
    result = project.run("run", capsys=capsys)
    assert result.code == 0, result.out + result.err
    assert project.server.count == 2
    assert all(r.json["messages"][0]["content"][1] == image(RED) for r in project.server.requests)
    digest = hashlib.sha256(RED).hexdigest()[:12]
    snapshot = project.snapshot("agent")
    assert f"user: |-\n        What is the total?\n        [image image/png sha256:{digest}]\n" in snapshot
    assert base64.b64encode(RED).decode()[:40] not in snapshot


def test_content_text_shows_images_without_their_bytes() -> None:
    content = [
        {"type": "text", "text": "Total?"},
        image(RED),
        {"type": "image_url", "image_url": {"url": "https://example.com/r.png"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    ]
    digest = hashlib.sha256(RED).hexdigest()[:12]
    assert content_text(content) == (
        f"Total?\n[image image/png sha256:{digest}]\n[image https://example.com/r.png]\n[input_audio]"
    )
    assert content_text("plain") == "plain"
