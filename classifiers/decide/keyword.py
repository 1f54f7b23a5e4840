"""The plain keyword classifier: the baseline every other classifier is measured against, and the test double.

A theme is given when one of its ``keywords`` (from the themes file) occurs in the title or summary as a whole word,
ignoring case and accents; a keyword written in capitals of at most five letters (``IA``, ``AI``, ``SNDS``) must
match in capitals, so that French "j'ai" is not "AI". Deterministic, no model, no negative rule.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from classifiers.decide.base import Classified
from classifiers.decide.themes import Taxonomy, load_themes
from watcher.models import Item, ThemeTag
from watcher.util.text import fold

VERSION = "1"


def _is_acronym(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    return 0 < len(letters) <= 5 and all(c.isupper() for c in letters)


@lru_cache(maxsize=512)
def keyword_pattern(keyword: str) -> re.Pattern[str]:
    """A whole-word pattern for ``keyword``: on folded text, or case-sensitive for a short acronym."""
    if _is_acronym(keyword):
        return re.compile(rf"(?<![\w-]){re.escape(keyword)}(?![\w-])")
    words = [re.escape(w) for w in fold(keyword).split()]
    return re.compile(r"(?<!\w)" + r"[\s-]+".join(words) + r"(?!\w)")


def find_keywords(keywords: Sequence[str], text: str) -> list[str]:
    """The keywords that occur in ``text`` (in the order given)."""
    folded = fold(text)
    plain = unicodedata.normalize("NFKC", text.replace("’", "'"))
    return [k for k in keywords if keyword_pattern(k).search(plain if _is_acronym(k) else folded)]


class KeywordClassifier:
    """Theme = any keyword of the theme in the title or summary."""

    name = "keyword"
    version = VERSION

    def __init__(self, taxonomy: Taxonomy | None = None):
        self.taxonomy = taxonomy or load_themes()

    def classify(self, items: Sequence[Item]) -> list[Classified]:
        return [Classified(self._one(item), model="no model") for item in items]

    def _one(self, item: Item) -> list[ThemeTag]:
        text = item.classification_text()
        tags = []
        for theme in self.taxonomy:
            found = find_keywords(theme.keywords, text)
            if found:
                tags.append(ThemeTag(theme=theme.id, score=1.0, reason="matched: " + ", ".join(found[:4]),
                                     origin="rule", model=self.name, model_version=self.version))
        return tags
