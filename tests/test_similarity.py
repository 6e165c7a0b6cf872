"""Semantic diffs: similarity scores, sentence alignment, reworded vs meaning changed."""

from __future__ import annotations

import pytest

from prompttest.checks.similarity import (
    ChangeSummary,
    align_sentences,
    classify_change,
    fact_difference,
    lexical_similarity,
    sort_by_similarity,
    split_sentences,
)


def test_identical_texts_score_one() -> None:
    summary = classify_change("Paris is the capital.", "Paris is the capital.")
    assert (summary.similarity, summary.kind) == (1.0, "identical")
    assert [p.kind for p in summary.pairs] == ["same"]


def test_whitespace_only_differences_are_their_own_kind() -> None:
    summary = classify_change("Paris is  the capital.\nIt is big.\n", "Paris is the capital. It is big.")
    assert (summary.similarity, summary.kind) == (1.0, "whitespace")
    assert summary.explanation == "whitespace"


def test_a_reordered_sentence_is_reworded_with_high_similarity() -> None:
    summary = classify_change("The capital of France is Paris.", "Paris is the capital of France.")
    assert summary.kind == "reworded"
    assert summary.similarity > 0.8
    assert [p.kind for p in summary.pairs] == ["reworded"]


def test_an_added_negation_changes_the_meaning_though_the_words_match() -> None:
    summary = classify_change("The meeting is on Monday.", "The meeting is not on Monday.")
    assert summary.kind == "meaning changed"
    assert summary.similarity > 0.8  # lexically close: that is why the negation is checked
    assert summary.pairs[0].reason == "negation added"
    assert classify_change("It isn't ready.", "It is ready.").pairs[0].reason == "negation removed"


def test_a_changed_number_changes_the_meaning() -> None:
    summary = classify_change("It costs 5 dollars.", "It costs 50 dollars.")
    assert summary.kind == "meaning changed"
    assert summary.pairs[0].reason == "numbers differ: 5 → 50"


def test_number_words_and_digits_are_the_same_number() -> None:
    assert classify_change("It costs five dollars.", "It costs 5 dollars.").kind == "reworded"
    assert classify_change("It takes two days.", "It takes three days.").kind == "meaning changed"


def test_a_changed_name_changes_the_meaning() -> None:
    summary = classify_change("The meeting is on Monday.", "The meeting is on Tuesday.")
    assert summary.kind == "meaning changed"
    assert summary.pairs[0].reason == "names differ: monday → tuesday"


def test_a_swapped_content_word_changes_the_meaning() -> None:
    summary = classify_change("He left early.", "He left late.")
    assert summary.kind == "meaning changed"
    assert summary.pairs[0].reason == "content words differ: early → late"


def test_a_synonym_in_a_longer_sentence_is_reworded() -> None:
    summary = classify_change("It is a large city with many museums.", "It is a big city with many museums.")
    assert summary.kind == "reworded"


def test_a_restructured_paraphrase_is_reworded() -> None:
    before = "Use a virtual environment to isolate dependencies."
    after = "Isolate your dependencies with a virtual environment."
    assert classify_change(before, after).kind == "reworded"


def test_a_flipped_yes_changes_the_meaning() -> None:
    assert classify_change("Yes, it is valid.", "No, it is valid.").kind == "meaning changed"
    assert fact_difference("The claim is true.", "The claim is false.") == "answer flipped: true → false"


def test_an_added_sentence_is_an_added_pair() -> None:
    summary = classify_change(
        "Paris is lovely. It has museums.", "Paris is lovely. It has museums. It has cafes."
    )
    assert [p.kind for p in summary.pairs] == ["same", "same", "added"]
    assert summary.pairs[-1].after == "It has cafes."
    assert summary.kind == "meaning changed"  # new content is new meaning
    assert summary.explanation.endswith(": 1 added")


def test_a_removed_sentence_is_a_removed_pair() -> None:
    pairs = align_sentences("Sure! Paris is the capital.", "Paris is the capital.")
    assert [(p.kind, p.before) for p in pairs] == [("removed", "Sure!"), ("same", "Paris is the capital.")]


def test_fully_different_texts_score_low_and_change_meaning() -> None:
    summary = classify_change("The sky is blue today.", "Quantum computers use qubits.")
    assert summary.similarity < 0.1
    assert summary.kind == "meaning changed"
    assert [p.kind for p in summary.pairs] == ["removed", "added"]


def test_moved_sentences_are_not_changes() -> None:
    summary = classify_change(
        "First point. Second point here. Third one.", "Second point here. Third one. First point."
    )
    assert summary.kind == "reworded"
    assert all(p.kind == "same" for p in summary.pairs)


def test_one_sentence_split_in_two_stays_reworded() -> None:
    before = "Paris is the capital of France and its largest city."
    after = "Paris is the capital of France. It is also its largest city."
    summary = classify_change(before, after)
    assert summary.kind == "reworded"
    assert [(p.kind, p.before, p.after) for p in summary.pairs] == [("reworded", before, after)]


def test_each_changed_sentence_is_paired_with_its_closest_counterpart() -> None:
    pairs = align_sentences(
        "Intro stays. The price is 5 dollars. Shipping takes a week.",
        "Intro stays. Shipping takes one week. The price is 7 dollars.",
    )
    assert [(p.kind, p.before, p.after) for p in pairs] == [
        ("same", "Intro stays.", "Intro stays."),
        ("changed", "Shipping takes a week.", "Shipping takes one week."),
        ("changed", "The price is 5 dollars.", "The price is 7 dollars."),
    ]


def test_lexical_similarity_bounds() -> None:
    assert lexical_similarity("Same words here.", "Same words here.") == 1.0
    assert lexical_similarity("alpha beta", "gamma delta") == 0.0
    assert lexical_similarity("", "") == 1.0
    assert lexical_similarity("", "words") == 0.0
    assert lexical_similarity("Hello, World!", "hello world") == 1.0  # case and punctuation are not words
    assert 0.0 < lexical_similarity("the cat sat", "the dog sat") < 1.0


def test_lexical_similarity_is_symmetric() -> None:
    a, b = "The quick brown fox jumps.", "A quick fox jumped over it."
    assert lexical_similarity(a, b) == pytest.approx(lexical_similarity(b, a))


def test_split_sentences_on_prose_and_lines() -> None:
    text = 'Dr. Smith met J. Doe, e.g. at noon. Then he left! "Why?" she asked.\nNew line here'
    assert split_sentences(text) == [
        "Dr. Smith met J. Doe, e.g. at noon.",
        "Then he left!",
        '"Why?" she asked.',
        "New line here",
    ]


def test_split_sentences_keeps_code_and_list_items_whole() -> None:
    text = "Steps:\n\n1. Install it. Then run.\n- Check the version. Done\n```python\nx = 1. Y = 2\n```"
    assert split_sentences(text) == [
        "Steps:",
        "1. Install it. Then run.",
        "- Check the version. Done",
        "```python",
        "x = 1. Y = 2",
        "```",
    ]


def test_a_scorer_can_replace_the_lexical_similarity() -> None:
    calls: list[tuple[str, str]] = []

    def cosine(a: str, b: str) -> float:
        calls.append((a, b))
        return 0.9

    summary = classify_change("It is a big city.", "It is a metropolis.", scorer=cosine)
    assert summary.kind == "reworded"  # synonyms are the scorer's call, not the content words'
    assert summary.similarity == 0.9
    assert calls


def test_the_fact_check_applies_even_with_a_scorer() -> None:
    summary = classify_change("It is ready.", "It is not ready.", scorer=lambda a, b: 0.97)
    assert summary.kind == "meaning changed"


def test_a_scorer_below_its_threshold_means_changed() -> None:
    summary = classify_change("It is a big city.", "It is a metropolis.", scorer=lambda a, b: 0.6)
    assert summary.kind == "meaning changed"
    assert classify_change(
        "It is a big city.", "It is a metropolis.", scorer=lambda a, b: 0.6, reworded_at=0.5
    ).kind == ("reworded")


def test_scorer_results_are_clamped_to_zero_one() -> None:
    assert classify_change("a b", "c d", scorer=lambda a, b: -0.3).similarity == 0.0


def test_sort_by_similarity_puts_the_least_similar_first() -> None:
    summaries = {
        "reworded": classify_change("The capital of France is Paris.", "Paris is the capital of France."),
        "unrelated": classify_change("The sky is blue today.", "Quantum computers use qubits."),
        "number": classify_change("It costs 5 dollars.", "It costs 50 dollars."),
    }
    assert sort_by_similarity(summaries) == ["unrelated", "number", "reworded"]


def test_sort_by_similarity_breaks_ties_by_kind_then_key() -> None:
    summaries = {
        "b": ChangeSummary(0.5, "reworded", ()),
        "c": ChangeSummary(0.5, "meaning changed", ()),
        "a": ChangeSummary(0.5, "reworded", ()),
    }
    assert sort_by_similarity(summaries) == ["c", "a", "b"]


# (before, after, kind, what the explanation ends with): a sentence tacked on is new content
# however close the rest is, with or without its full stop; the README says so.
ADDED_SENTENCES = [
    (
        "The capital of Norway is Oslo.",
        "The capital of norway is oslo. Hope this helps!",
        "meaning changed",
        ": 1 added",
    ),
    (
        "The capital of Norway is Oslo.",
        "Oslo is the capital of Norway. Hope this helps!",
        "meaning changed",
        ": 1 added",
    ),
    (
        "Sure! The capital of Norway is Oslo.",
        "The capital of norway is oslo.",
        "meaning changed",
        ": 1 removed",
    ),
    (
        "Echo: Say hello to the team",
        "Echo: Say hello to the team Hope this helps!",
        "meaning changed",
        ": words added: Hope this helps",
    ),
    (
        "Echo: say hello to the team hope this helps",
        "Echo: say hello to the team",
        "meaning changed",
        ": words removed: hope this helps",
    ),
    ("The capital of Norway is Oslo.", "the capital of norway is oslo", "reworded", ""),
    (
        "Paris is the capital of France and its largest city.",
        "Paris is the capital of France. It is also its largest city.",
        "reworded",
        "",
    ),
]


@pytest.mark.parametrize(("before", "after", "kind", "ending"), ADDED_SENTENCES)
def test_added_or_removed_sentences_change_the_meaning_as_the_readme_says(
    before: str, after: str, kind: str, ending: str
) -> None:
    summary = classify_change(before, after)
    assert summary.kind == kind, summary.explanation
    assert summary.explanation.endswith(ending), summary.explanation
    assert "names differ" not in summary.explanation


def test_words_tacked_on_are_added_words_even_with_a_scorer() -> None:
    summary = classify_change(
        "Say hello to the team", "Say hello to the team Hope this helps!", scorer=lambda a, b: 0.95
    )
    assert summary.kind == "meaning changed"
    assert summary.explanation.endswith(": words added: Hope this helps")
