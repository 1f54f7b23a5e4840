"""Shared by the classifier tests that run without the real model."""

from __future__ import annotations

from dataclasses import replace

from classifiers.decide.head import Head


def untuned_head() -> Head:
    """The bundled head without its fine-tuned encoder update, so that a fake embedder (hash vectors, no model) can
    stand for the original encoder (the hybrid refuses a head and an encoder that do not belong together)."""
    return replace(Head.load(), adapter=None)
