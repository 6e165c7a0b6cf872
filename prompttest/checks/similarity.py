"""Semantic diffs for `changed` outputs: how similar, and reworded or meaning changed.

No model needed: a lexical similarity, a sentence-level alignment, and a check of the
facts that small edits flip (numbers, negations, names). An embedding scorer (`cosine`,
judged checks) plugs in through `Similarity`; the fact check still applies then, because
embeddings score "is on Monday" and "is not on Monday" as near-identical.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal, NamedTuple, Protocol

ChangeKind = Literal["identical", "whitespace", "reworded", "meaning changed"]
PairKind = Literal["same", "reworded", "changed", "added", "removed"]

# A pair of sentences whose facts agree is reworded from this lexical similarity up.
# Real paraphrases that restructure score ~0.45-0.55 ("Use a virtual environment to
# isolate dependencies." / "Isolate your dependencies with a virtual environment." 0.49);
# the same words reordered 0.83. Short unrelated sentences that share "the ... is" reach
# ~0.42: the content-word floor below is what rejects those.
REWORDED_AT = 0.4
# Sentence-embedding cosines sit high even for loosely related text: a stricter default.
REWORDED_AT_SCORER = 0.8
# Lexical only: a reworded pair also shares half its content words (Jaccard, stopwords
# out), so "He left early" / "He left late" (similarity 0.58, content 1/3) is not one.
CONTENT_AT = 0.5
# Below this, two sentences in a replaced block read better as removed + added.
PAIR_AT = 0.25

_TOKEN = re.compile(r"\w+(?:['.,]\w+)*")
_NEGATIONS = frozenset("not no never none nobody nothing neither nor nowhere cannot without".split())
_POLARITY = frozenset({"yes", "true", "false"})
_UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
_TEENS = "fifteen sixteen seventeen eighteen nineteen twenty"
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(f"{_UNITS} {_TEENS}".split())}
_NUMBER_WORDS |= {
    w: str(10 * i) for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), 3)
}
_STOPWORDS = frozenset(
    "a an the and or but if then so of to in on at by for with from as into about over under than "
    "that this these those it its it's is are was were be been being am do does did have has had "
    "will would shall should can could may might must i you he she we they me him her us them my "
    "your his our their there here what which who whom whose when where why how all any some each "
    "every more most other such only own same very just also too again once up down out off "
    "i'm i've i'll i'd".split()
)
_ABBREVIATIONS = frozenset("mr mrs ms dr prof sr jr st vs etc e.g i.e inc ltd approx fig".split())
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]*[A-Z0-9])")
_FENCE = re.compile(r"^\s*(```|~~~)")
_WHOLE_LINE = re.compile(r"^\s*(?:[-*+•]\s|\d+[.)]\s|#|\||>)")  # list items, headings, tables, quotes


class Similarity(Protocol):
    """A scorer: symmetric, 1.0 for identical texts, in [0, 1] (results are clamped)."""

    def __call__(self, a: str, b: str, /) -> float: ...


@dataclass(frozen=True)
class SentencePair:
    """One aligned unit: a sentence before and/or after, its kind and why."""

    before: str | None
    after: str | None
    kind: PairKind
    similarity: float
    reason: str = ""


@dataclass(frozen=True)
class ChangeSummary:
    """How an output changed: a similarity for sorting, a kind, and the aligned sentences."""

    similarity: float
    kind: ChangeKind
    pairs: tuple[SentencePair, ...]

    @property
    def explanation(self) -> str:
        """One line for reports: `meaning changed (0.82): negation added; 1 added`."""
        if self.kind in ("identical", "whitespace"):
            return self.kind
        reasons = [p.reason for p in self.pairs if p.reason]
        moves = [f"{sum(p.kind == k for p in self.pairs)} {k}" for k in ("added", "removed")]
        details = reasons + [m for m in moves if not m.startswith("0 ")]
        return f"{self.kind} ({self.similarity:.2f})" + (": " + "; ".join(details) if details else "")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.replace("’", "'"))


def _words(text: str) -> list[str]:
    """Lowercased word tokens, number words as digits ("five" and "5" are one word)."""
    return [_NUMBER_WORDS.get(w, w) for w in (t.lower() for t in _tokens(text))]


def lexical_similarity(a: str, b: str) -> float:
    """Mean of word-set Jaccard and difflib's ratio on the word lists, lowercased.

    Words, not characters: character ratios reward shared letters between different words
    ("Monday"/"Sunday" 0.67). The set overlap ignores order, so a reordered answer ("Paris
    is the capital of France" / "The capital of France is Paris") stays high; the ordered
    ratio counts repeats and tells a rewrite from a reshuffle. 1.0 exactly when the word
    lists match, 0.0 when no word is shared. Texts without words compare as characters.
    """
    ta, tb = _words(a), _words(b)
    if not ta and not tb:
        return SequenceMatcher(None, a.strip(), b.strip(), autojunk=False).ratio()
    return _word_similarity(ta, tb)


def _word_similarity(ta: list[str], tb: list[str]) -> float:
    sa, sb = set(ta), set(tb)
    shared = len(sa & sb)
    if not shared:
        return 0.0
    # autojunk off: it drops words seen in over 1% of a 200+ word text, i.e. "the"
    ordered = SequenceMatcher(None, ta, tb, autojunk=False).ratio()
    return (shared / len(sa | sb) + ordered) / 2


def split_sentences(text: str) -> list[str]:
    """Sentences of prose, one per item; lines in code blocks and list items stay whole.

    A sentence ends at . ! ? … (and closing quotes) before a space and a capital or digit,
    unless the word before is a known abbreviation or a single letter (initials).
    """
    units: list[str] = []
    in_code = False
    for line in text.splitlines():
        fence = bool(_FENCE.match(line))
        if not line.strip():
            continue
        if in_code or fence or _WHOLE_LINE.match(line):
            units.append(line.strip())
        else:
            units.extend(_split_prose(line))
        in_code ^= fence
    return units


def _split_prose(line: str) -> list[str]:
    parts, start = [], 0
    for match in _SENTENCE_END.finditer(line):
        head = line[start : match.start()].split()
        word = head[-1].lower().strip("(\"'") if head else ""
        if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            continue
        parts.append(line[start : match.end()].strip())
        start = match.end()
    parts.append(line[start:].strip())
    return [p for p in parts if p]


def _norm(text: str) -> str:
    return " ".join(text.split())


class _Facts(NamedTuple):
    numbers: set[str]
    negations: int
    polarity: set[str]  # yes / true / false
    names: set[str]  # capitalized words not first in their sentence (nor stopwords), lowercased
    words: set[str]


def _facts(text: str) -> _Facts:
    words = _words(text)
    numbers = {w.replace(",", "") for w in words if w[0].isdigit()}
    negations = sum(w in _NEGATIONS or w.endswith("n't") for w in words)
    names = {
        t.lower()
        for s in split_sentences(text)
        for t in _tokens(s)[1:]
        if t[0].isupper() and t.lower() not in _STOPWORDS
    }
    return _Facts(numbers, negations, set(words) & _POLARITY, names, set(words))


def fact_difference(before: str, after: str) -> str:
    """Why two texts cannot be a rewording of each other, or "" when their facts agree.

    A changed number (digits or number words up to ninety), an added or removed negation,
    a flipped yes/true/false, or a name (a capitalized word not first in its sentence)
    that the other text lacks in any case. Sentence-first names are not seen: "Monday is
    free" / "Tuesday is free" is left to the similarity (a known gap; no model, no POS).
    """
    b, a = _facts(before), _facts(after)
    if b.numbers != a.numbers:
        return f"numbers differ: {_listed(b.numbers - a.numbers)} → {_listed(a.numbers - b.numbers)}"
    if b.negations != a.negations:
        return "negation added" if a.negations > b.negations else "negation removed"
    if b.polarity != a.polarity:
        return f"answer flipped: {_listed(b.polarity)} → {_listed(a.polarity)}"
    lost, gained = b.names - a.words, a.names - b.words
    if lost or gained:
        return f"names differ: {_listed(lost)} → {_listed(gained)}"
    return ""


def words_added(before: str, after: str) -> str:
    """`words added: …` / `words removed: …` when one text is the other with words at its
    start or end (and some of them content words), else ""."""
    b, a = _words(before), _words(after)
    if len(a) == len(b):
        return ""
    longer, shorter, what = (after, b, "added") if len(a) > len(b) else (before, a, "removed")
    words = _words(longer)
    extra = _extra_span(words, shorter)
    if extra is None or not set(words[extra[0] : extra[1]]) - _STOPWORDS:
        return ""
    return f"words {what}: " + " ".join(_tokens(longer)[extra[0] : extra[1]])


def _extra_span(words: list[str], shorter: list[str]) -> tuple[int, int] | None:
    """Where `words` has more than `shorter` when it only adds at the end or the start."""
    if not shorter:
        return None  # all of it is new: that is for the similarity to say
    if words[: len(shorter)] == shorter:
        return len(shorter), len(words)
    if words[-len(shorter) :] == shorter:
        return 0, len(words) - len(shorter)
    return None


def _listed(items: set[str]) -> str:
    return ", ".join(sorted(items)) or "-"


class _Judge(NamedTuple):
    """How pairs are tagged: the scorer, its reworded threshold, the content-word floor."""

    score: Callable[[str, str], float]
    reworded_at: float
    content_at: float

    @classmethod
    def make(cls, scorer: Similarity | None, reworded_at: float | None) -> _Judge:
        if scorer is None:
            return cls(lexical_similarity, REWORDED_AT if reworded_at is None else reworded_at, CONTENT_AT)
        # An embedding scorer knows synonyms: the content-word floor would overrule it.
        return cls(scorer, REWORDED_AT_SCORER if reworded_at is None else reworded_at, 0.0)

    def tag(self, before: str, after: str) -> SentencePair:
        if _norm(before) == _norm(after):
            return SentencePair(before, after, "same", 1.0)
        similarity = min(1.0, max(0.0, self.score(before, after)))
        # Words tacked on (a sentence without its full stop) are new content, not a
        # rewording, and its first word is no name: "team Hope this helps" adds words.
        reason = words_added(before, after) or fact_difference(before, after)
        if not reason and similarity < self.reworded_at:
            reason = f"similarity {similarity:.2f} < {self.reworded_at:g}"
        if not reason and self.content_at:
            b, a = (set(_words(t)) - _STOPWORDS for t in (before, after))
            if b != a and len(a & b) / len(a | b) < self.content_at:
                reason = f"content words differ: {_listed(b - a)} → {_listed(a - b)}"
        return SentencePair(before, after, "changed" if reason else "reworded", similarity, reason)


def align_sentences(
    before: str, after: str, *, scorer: Similarity | None = None, reworded_at: float | None = None
) -> list[SentencePair]:
    """Sentence pairs from before to after, each same/reworded/changed/added/removed.

    difflib aligns the sentence lists; the sentences of a replaced block are paired by
    best lexical similarity (at least PAIR_AT), and a block that reads as changed
    sentence by sentence is compared whole, so one sentence split in two stays reworded.
    Last, a removed and an added sentence that are the same or reworded become one pair:
    moved sentences are not changes. Pairing is lexical even with a scorer (cheap and
    deterministic); the scorer decides reworded or changed.
    """
    judge = _Judge.make(scorer, reworded_at)
    old, new = split_sentences(before), split_sentences(after)
    matcher = SequenceMatcher(None, [_norm(s) for s in old], [_norm(s) for s in new], autojunk=False)
    pairs: list[SentencePair] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            pairs += [SentencePair(b, a, "same", 1.0) for b, a in zip(old[i1:i2], new[j1:j2], strict=True)]
        else:
            pairs += _replace_block(old[i1:i2], new[j1:j2], judge)
    return _pair_moved(pairs, judge)


def _replace_block(old: list[str], new: list[str], judge: _Judge) -> list[SentencePair]:
    old_words, new_words = [_words(s) for s in old], [_words(s) for s in new]
    candidates = sorted(
        ((_word_similarity(b, a), i, j) for i, b in enumerate(old_words) for j, a in enumerate(new_words)),
        reverse=True,
    )
    matched: dict[int, int] = {}  # new index -> old index
    for similarity, i, j in candidates:
        if similarity >= PAIR_AT and i not in matched.values() and j not in matched:
            matched[j] = i
    pairs = [SentencePair(b, None, "removed", 0.0) for i, b in enumerate(old) if i not in matched.values()]
    for j, a in enumerate(new):
        pairs.append(judge.tag(old[matched[j]], a) if j in matched else SentencePair(None, a, "added", 0.0))
    if (
        old
        and new
        and len(pairs) > 1
        and any(p.kind not in ("same", "reworded") for p in pairs)
        and _only_regrouped(pairs, old, new)
    ):
        whole = judge.tag(" ".join(old), " ".join(new))
        if whole.kind in ("same", "reworded"):
            return [whole]
    return pairs


def _only_regrouped(pairs: list[SentencePair], old: list[str], new: list[str]) -> bool:
    """Whether every unpaired sentence says what the other side says (a sentence split in
    two): one whose content words the other side mostly lacks ("Hope this helps!") is an
    added or removed sentence, which the whole-block reading must not swallow."""
    words = {"removed": set(_words(" ".join(new))), "added": set(_words(" ".join(old)))}
    for pair in pairs:
        if pair.kind in words:
            content = set(_words(pair.before or pair.after or "")) - _STOPWORDS
            if content and len(content & words[pair.kind]) / len(content) < CONTENT_AT:
                return False
    return True


def _pair_moved(pairs: list[SentencePair], judge: _Judge) -> list[SentencePair]:
    result = list(pairs)
    for removed in [p for p in pairs if p.kind == "removed"]:
        text = removed.before or ""
        added = [
            (lexical_similarity(text, p.after or ""), k) for k, p in enumerate(result) if p.kind == "added"
        ]
        if not added:
            break
        _, k = max(added)
        moved = judge.tag(text, result[k].after or "")
        if moved.kind in ("same", "reworded"):
            result[k] = moved
            result.remove(removed)
    return result


def classify_change(
    before: str, after: str, *, scorer: Similarity | None = None, reworded_at: float | None = None
) -> ChangeSummary:
    """Identical, whitespace, reworded (every sentence same or reworded) or meaning changed.

    The similarity is the scorer's over the whole texts (lexical by default). Any added,
    removed or changed sentence makes the meaning changed: new content is new meaning.
    `reworded_at` overrides the threshold (REWORDED_AT, or REWORDED_AT_SCORER with a scorer).
    """
    pairs = tuple(align_sentences(before, after, scorer=scorer, reworded_at=reworded_at))
    if before.split() == after.split():
        return ChangeSummary(1.0, "identical" if before == after else "whitespace", pairs)
    similarity = min(1.0, max(0.0, (scorer or lexical_similarity)(before, after)))
    reworded = all(p.kind in ("same", "reworded") for p in pairs)
    return ChangeSummary(similarity, "reworded" if reworded else "meaning changed", pairs)


_SEVERITY = {"meaning changed": 0, "reworded": 1, "whitespace": 2, "identical": 3}


def sort_by_similarity(summaries: Mapping[str, ChangeSummary]) -> list[str]:
    """Keys by lowest similarity first; ties: meaning changed first, then by key."""
    return sorted(summaries, key=lambda k: (summaries[k].similarity, _SEVERITY[summaries[k].kind], k))
