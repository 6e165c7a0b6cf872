"""WordPiece, as BERT's tokenizer splits text: the tokenizer of the embedding model.

Text is normalized (lower case, accents stripped, control characters dropped), split on
spaces and punctuation (each CJK character is a word of its own), then each word into the
longest pieces the vocabulary knows.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_LENGTH = 256  # sentence_bert_config.json's max_seq_length, if that file is gone
MAX_CHARS_PER_WORD = 100  # longer words are one [UNK] (WordPiece's max_input_chars_per_word)
_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass(frozen=True)
class Tokenizer:
    """BERT's uncased WordPiece tokenizer, as `tokenizers` runs the package's tokenizer.json."""

    vocab: dict[str, int]
    max_length: int = DEFAULT_MAX_LENGTH

    @classmethod
    def from_file(cls, path: Path, *, max_length: int = DEFAULT_MAX_LENGTH) -> Tokenizer:
        """Read the WordPiece vocabulary of a `tokenizer.json`."""
        spec = json.loads(path.read_text(encoding="utf-8"))
        model = spec["model"]
        if model.get("type") != "WordPiece" or model.get("continuing_subword_prefix", "##") != "##":
            raise ValueError(f"{path}: not a BERT WordPiece tokenizer")
        vocab = dict(model["vocab"])
        for added in spec.get("added_tokens", []):
            vocab[added["content"]] = added["id"]
        return cls(vocab=vocab, max_length=max_length)

    def tokens(self, text: str) -> list[str]:
        """The word pieces of `text`, without [CLS]/[SEP] and not truncated."""
        pieces: list[str] = []
        for part, special in _split_special(text):
            if special:
                pieces.append(part)  # a literal "[SEP]" in the text is that token, as in tokenizers
                continue
            for word in _pre_tokenize(_normalize(part)):
                pieces.extend(self._wordpiece(word))
        return pieces

    def encode(self, text: str) -> list[int]:
        """Token ids: [CLS] pieces [SEP], truncated to `max_length` in all."""
        pieces = self.tokens(text)[: self.max_length - 2]
        return [self.vocab[p] for p in ["[CLS]", *pieces, "[SEP]"]]

    def _wordpiece(self, word: str) -> list[str]:
        # Greedy longest match first; a word with any unmatched rest is one [UNK].
        if len(word) > MAX_CHARS_PER_WORD:
            return ["[UNK]"]
        pieces: list[str] = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    pieces.append(piece)
                    break
                end -= 1
            else:
                return ["[UNK]"]
            start = end
        return pieces


def _split_special(text: str) -> list[tuple[str, bool]]:
    # Special tokens are matched in the raw text, before normalisation (normalized: false).
    parts: list[tuple[str, bool]] = []
    rest = text
    while rest:
        found = [(rest.find(t), t) for t in _SPECIAL_TOKENS if t in rest]
        if not found:
            parts.append((rest, False))
            break
        index, token = min(found)
        if index:
            parts.append((rest[:index], False))
        parts.append((token, True))
        rest = rest[index + len(token) :]
    return parts


def _normalize(text: str) -> str:
    # BertNormalizer in tokenizers' order: clean text, space out CJK, strip accents, lowercase.
    chars = []
    for char in text:
        if char in "\t\n\r":
            chars.append(" ")
        elif char in "\x00\ufffd" or unicodedata.category(char) in _REMOVED:
            continue
        elif char.isspace():
            chars.append(" ")
        elif _is_chinese(char):
            chars.append(f" {char} ")
        else:
            chars.append(char)
    decomposed = unicodedata.normalize("NFD", "".join(chars))
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return "".join(c.lower() for c in stripped)  # per character: no final-sigma rule


# Control, format, private-use and surrogate characters; unassigned ones (Cn) are kept
# (they become [UNK]), as tokenizers does.
_REMOVED = frozenset({"Cc", "Cf", "Co", "Cs"})
# The CJK ideograph blocks BERT makes one word per character.
_CJK_BLOCKS = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B920, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def _is_chinese(char: str) -> bool:
    return ord(char) >= 0x3400 and any(low <= ord(char) <= high for low, high in _CJK_BLOCKS)


def _pre_tokenize(text: str) -> list[str]:
    # BertPreTokenizer: split on whitespace, and every punctuation character is a word.
    words: list[str] = []
    current: list[str] = []
    for char in text:
        if char.isspace() or _is_punctuation(char):
            if current:
                words.append("".join(current))
                current = []
            if not char.isspace():
                words.append(char)
        else:
            current.append(char)
    if current:
        words.append("".join(current))
    return words


def _is_punctuation(char: str) -> bool:
    # ASCII symbols such as $ + < = > ^ ` | ~ count too, as in BERT.
    return (char.isascii() and not char.isalnum() and char.isprintable() and char != " ") or (
        unicodedata.category(char).startswith("P")
    )


# --------------------------------------------------------------------------- weights
