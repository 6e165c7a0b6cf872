"""The `--html` renderer without a browser: escaping, the data block, no external references."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from dataclasses import replace

from test_html_report import HOSTILE, sample_record

from prompttest.model import Verdict
from prompttest.report.html import CSP, diff_html, render_html, script_json


def _data_block(page: str) -> str:
    match = re.search(r'<script type="application/json" id="pt-data">(.*?)</script>', page, re.S)
    assert match
    return match.group(1)


def test_outputs_and_suite_strings_are_escaped() -> None:
    record = sample_record()
    odd = replace(record.results[1], suite='x"><marquee>', case="a&b'c")
    page = render_html(replace(record, results=(odd, *record.results[2:])))
    assert "<marquee>" not in page and "<img" not in page and 'onerror="window' not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
    assert 'value="x&quot;&gt;&lt;marquee&gt;"' in page  # the suite filter's option
    assert "x&quot;&gt;&lt;marquee&gt;/a&amp;b&#x27;c@gpt" in page  # the row's key


def test_the_data_block_cannot_be_closed_and_reads_back_intact() -> None:
    hostile = HOSTILE + "<!-- \u2028\u2029 & </SCRIPT >"
    record = sample_record()
    result = replace(record.results[1], output=hostile)
    page = render_html(replace(record, results=(result,)))
    assert len(re.findall(r"<script", page, re.I)) == 2  # the data block and the page's script
    assert len(re.findall(r"</script", page, re.I)) == 2
    block = _data_block(page)
    assert not set(block) & {"<", ">", "&", "\u2028", "\u2029"}
    assert hostile in json.loads(block)["rows"][0]["text"]


def test_script_json_round_trips() -> None:
    value = {"text": "</script><!-- a & b \u2028 \u2029 ünï"}
    assert json.loads(script_json(value)) == value


def test_nothing_external_is_referenced() -> None:
    record = sample_record()
    tame = tuple(result for result in record.results if result.output != HOSTILE)
    body = render_html(replace(record, results=tame)).replace(html.escape(CSP), "")  # hashes may hold `//`
    for needle in ("src=", "href=", "url(", "@import", "http:", "https:", "//"):
        assert needle not in body, needle


def test_the_policy_allows_exactly_the_inline_style_and_script() -> None:
    page = render_html(sample_record())
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    script = re.search(r"<script>(.*?)</script>", page, re.S)
    assert style and script
    for text in (style.group(1), script.group(1)):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in CSP
    assert CSP.startswith("default-src 'none';")
    assert f'content="{html.escape(CSP)}"' in page


def test_rows_come_regressions_first_and_reviewable_ones_open() -> None:
    page = render_html(sample_record())
    verdicts = re.findall(r'<details class="result v-(\w+)" id="r\d+"( open)?>', page)
    assert verdicts[0] == ("regressed", " open")
    assert verdicts[-1] == ("unchanged", "")
    assert ("obsolete", "") in verdicts


def test_word_diff_marks_only_the_changed_words() -> None:
    left, right = diff_html("The capital of Spain is Madrid.", "The capital of Spain is <Barcelona>.")
    assert left == "The capital of Spain is <del>Madrid</del>."
    assert right == "The capital of Spain is <ins>&lt;Barcelona&gt;</ins>."


def test_a_long_output_falls_back_to_a_line_diff() -> None:
    old = "\n".join(f"line {i} of the old text" for i in range(3000))
    new = old.replace("line 1500 of the old", "line 1500 of the new")
    left, right = diff_html(old, new)
    assert left.count("<del>") == 1 and "<del>line 1500 of the old text\n</del>" in left
    assert right.count("<ins>") == 1


def test_cost_unknown_is_said_and_a_lone_surrogate_does_not_break_the_page() -> None:
    record = sample_record()
    weird = replace(record.results[2], output="bad \ud800 text", verdict=Verdict.CHANGED)
    page = render_html(replace(record, results=(*record.results, weird)))
    assert 'id="stat-cost">unknown<' in page
    page.encode("utf-8")
