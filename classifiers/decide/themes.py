"""The theme taxonomy and its rules, read from one TOML file a user can edit (see the bundled ``themes.toml``).

Per theme: id, FR/EN labels and descriptions, baseline keywords, and what the rules (``classifiers.decide.rules``)
know of it: its words (weighted patterns), reference acts, sites, issuing authorities, kinds of CNIL délibération,
combinations with other themes, negative rules and what the model may do to the rules' decision. Outside the themes:
the guideline's off-topic list, the legal-angle words and the scope of the recall safety net. The rules are generic
code over these tables: adding a theme is a TOML edit (plus ``watcher train`` for the model).

A file named in the settings replaces the bundled one. Every error (unknown or missing key, a bad regular
expression, a reference act that is only a date, a combination naming an unknown theme) is a ``ConfigError`` that
names the file, the theme and the key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watcher.legal.identifiers import find_all
from watcher.util.errors import ConfigError
from watcher.util.text import fold

DEFAULT_THEMES = Path(__file__).parents[1] / "themes.toml"
WEIGHTS = {"strong": 4.0, "medium": 2.5, "weak": 1.0}
STRONG = WEIGHTS["strong"]
REQUIRED = ("id", "label_fr", "label_en", "description_fr", "description_en")
OPTIONAL = ("keywords", "sites", "model", "rule", "act", "authority", "nature", "combination", "negative")
# the schemes that name one act; the dated ones name an act only with words of its title
UNIQUE_SCHEMES = ("nor", "jorftext", "cnil", "eli", "celex", "ecli", "loi", "decret", "ordonnance", "deliberation",
                  "eu_regulation", "eu_directive")
DATED_SCHEMES = ("arrete", "decret_date", "loi_date", "ordonnance_date")
ARTICLES = {"decret": "le ", "reglement": "le ", "arrete": "l'", "loi": "la ", "directive": "la ", "ordonnance": "l'",
            "deliberation": "la ", "decision": "la "}


def word_pattern(expr: str) -> re.Pattern[str]:
    """A pattern on folded text, anchored on word boundaries."""
    return re.compile(rf"(?<!\w)(?:{expr})(?!\w)")


def acronym_pattern(expr: str) -> re.Pattern[str]:
    """A case-sensitive pattern on the raw text (acronyms such as IA, AI, SNDS)."""
    return re.compile(rf"(?<![\w-])(?:{expr})(?!\w)")


def words_expr(words: Sequence[str]) -> str:
    """Plain phrases as one alternation on folded text (spaces and hyphens alike)."""
    return "|".join(r"[\s-]+".join(re.escape(w) for w in fold(phrase).split()) for phrase in words)


@dataclass(frozen=True)
class Pattern:
    regex: re.Pattern[str]
    label: str
    weight: float
    folded: bool = True
    decisive: bool = False

    def search(self, folded: str, raw: str) -> bool:
        return bool(self.regex.search(folded if self.folded else raw))


@dataclass(frozen=True)
class ReferenceAct:
    """An act that gives its theme to whatever is or cites it: ``scheme``/``value`` as ``watcher.legal.identifiers``
    normalises them; ``title_words`` (folded) for an act known by its date."""

    ref: str
    scheme: str
    value: str
    name: str = ""
    title_words: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        """'cite le décret n° 2025-895 (expérimentation ...)': what a lawyer reads."""
        first = fold(self.ref).split()[0] if self.ref.split() else ""
        text = f"cite {ARTICLES.get(first, '')}{self.ref}"
        return f"{text} ({self.name})" if self.name else text


@dataclass(frozen=True)
class Combination:
    label: str
    weight: float
    theme: str = ""  # another theme whose evidence counts
    theme_min: float = 0.0  # ... whose positive evidence reaches this
    theme_given: bool = False  # ... or that the rules give
    all: tuple[re.Pattern[str], ...] = ()  # each must match the text
    title: re.Pattern[str] | None = None  # with ``summary``: one of them must match (title, or summary)
    summary: re.Pattern[str] | None = None
    ignore: str = ""  # a folded phrase removed before ``title`` / ``summary`` are tried


@dataclass(frozen=True)
class Negative:
    label: str
    weight: float
    theme: str = ""  # another theme's positive evidence reaches theme_min while this theme's is below own_below
    theme_min: float = 0.0
    own_below: float = 0.0
    no_legal_angle: bool = False  # the text has no legal angle and the source is not a legal one


@dataclass(frozen=True)
class OffTopic:
    """An entry of the guideline's off-topic list: a negative for every theme; ``excludes``: the theme goes whatever
    the model says; ``unless_about``: themes spared when one of their strong words is in the title."""

    pattern: Pattern
    excludes: bool = True
    unless_about: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelPolicy:
    """What the embedding model may do to the rules' decision on a theme (see ``head.combine``)."""

    add: bool = True
    remove: bool = True
    remove_grounded: float = 0.0  # the model alone's probability below which a grounded theme may go; 0 = never


@dataclass(frozen=True)
class Theme:
    id: str
    label_fr: str
    label_en: str
    description_fr: str
    description_en: str
    keywords: tuple[str, ...] = ()
    rules: tuple[Pattern, ...] = ()
    acts: tuple[ReferenceAct, ...] = ()
    sites: tuple[str, ...] = ()
    authorities: tuple[tuple[re.Pattern[str], str], ...] = ()
    natures: tuple[tuple[str, str], ...] = ()  # (folded start of NATURE_DELIB, label)
    combinations: tuple[Combination, ...] = ()
    negatives: tuple[Negative, ...] = ()
    model: ModelPolicy = ModelPolicy()

    def descriptions(self) -> tuple[str, str]:
        return self.description_fr, self.description_en


@dataclass(frozen=True)
class Taxonomy:
    themes: tuple[Theme, ...]
    path: str = ""
    off_topic: tuple[OffTopic, ...] = ()
    legal_angle: re.Pattern[str] | None = None
    tech_press: tuple[str, ...] = ()
    tech_press_weight: float = -3.0
    scope_sites: tuple[str, ...] = ()
    scope_authorities: tuple[tuple[re.Pattern[str], str], ...] = ()

    def __iter__(self) -> Iterator[Theme]:
        return iter(self.themes)

    def __len__(self) -> int:
        return len(self.themes)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.themes)

    def get(self, theme_id: str) -> Theme:
        for theme in self.themes:
            if theme.id == theme_id:
                return theme
        raise KeyError(f"unknown theme {theme_id!r} (known: {', '.join(self.ids)})")


def load_themes(path: str | Path | None = None) -> Taxonomy:
    """Read a themes TOML file (the bundled default when ``path`` is empty)."""
    file = Path(path) if path else DEFAULT_THEMES
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("themes file not found", file=str(file)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML ({exc})", file=str(file)) from None
    return _Reader(str(file)).taxonomy(raw)


class _Reader:
    """Turns the parsed TOML into a ``Taxonomy``, raising a ``ConfigError`` that names the file, table and key."""

    def __init__(self, file: str):
        self.file = file

    def error(self, message: str, where: str, key: str | None = None) -> ConfigError:
        return ConfigError(message, file=self.file, table=where, key=key)

    def taxonomy(self, raw: Mapping[str, Any]) -> Taxonomy:
        tables = raw.get("theme")
        if not isinstance(tables, list) or not tables:
            raise ConfigError("no [[theme]] table", file=self.file)
        unknown = sorted(set(raw) - {"theme", "off_topic", "legal_angle", "scope"})
        if unknown:
            raise ConfigError(f"unknown table(s) {', '.join(unknown)}", file=self.file)
        themes = tuple(self.theme(t, n) for n, t in enumerate(tables, 1))
        ids = [t.id for t in themes]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise self.error(f"duplicate theme id(s): {', '.join(dupes)}", "[[theme]]")
        for theme in themes:
            for other in [c.theme for c in theme.combinations] + [n.theme for n in theme.negatives]:
                if other and other not in ids:
                    raise self.error(f"names unknown theme {other!r} (known: {', '.join(ids)})",
                                     f"[[theme]] {theme.id}", "theme")
        legal = self.table(raw.get("legal_angle", {}), "[legal_angle]", {"regex", "tech_press", "tech_press_weight"})
        scope = self.table(raw.get("scope", {}), "[scope]", {"sites", "authority"})
        off_topic = tuple(self.off_topic(t, n, ids) for n, t in enumerate(self.tables(raw, "off_topic", "[[off_topic]]"),
                                                                            1))
        return Taxonomy(
            themes, self.file, off_topic,
            self.regex(legal, "regex", "[legal_angle]", word_pattern) if "regex" in legal else None,
            self.strings(legal, "tech_press", "[legal_angle]"),
            self.weight(legal.get("tech_press_weight", -3.0), "[legal_angle]", "tech_press_weight"),
            self.strings(scope, "sites", "[scope]"),
            tuple((self.regex(a, "regex", "[[scope.authority]]", re.compile), self.text(a, "label", "[[scope.authority]]"))
                  for a in self.tables(scope, "authority", "[[scope.authority]]")))

    # -- one theme ----------------------------------------------------------------------------------------------
    def theme(self, table: Mapping[str, Any], number: int) -> Theme:
        where = f"[[theme]] #{number}"
        if not isinstance(table, Mapping):
            raise self.error("must be a table", where)
        unknown = sorted(set(table) - set(REQUIRED) - set(OPTIONAL))
        if unknown:
            raise self.error(f"unknown key(s) {', '.join(unknown)}", where)
        for key in REQUIRED:
            self.text(table, key, where)
        where = f"[[theme]] {table['id'].strip()}"
        return Theme(
            id=table["id"].strip(), label_fr=table["label_fr"], label_en=table["label_en"],
            description_fr=" ".join(table["description_fr"].split()),
            description_en=" ".join(table["description_en"].split()),
            keywords=self.strings(table, "keywords", where), sites=self.strings(table, "sites", where),
            rules=tuple(self.rule(t, where) for t in self.tables(table, "rule", where)),
            acts=tuple(self.act(t, where) for t in self.tables(table, "act", where)),
            authorities=tuple((self.regex(t, "regex", where + " authority", re.compile),
                               self.text(t, "label", where + " authority"))
                              for t in self.tables(table, "authority", where)),
            natures=tuple((fold(self.text(t, "starts", where + " nature")), self.text(t, "label", where + " nature"))
                          for t in self.tables(table, "nature", where)),
            combinations=tuple(self.combination(t, where) for t in self.tables(table, "combination", where)),
            negatives=tuple(self.negative(t, where) for t in self.tables(table, "negative", where)),
            model=self.policy(table.get("model", {}), where))

    def rule(self, table: Mapping[str, Any], where: str) -> Pattern:
        where = f"{where} rule"
        self.table(table, where, {"label", "weight", "regex", "acronyms", "words", "decisive"})
        given = [k for k in ("regex", "acronyms", "words") if k in table]
        if len(given) != 1:
            raise self.error("give exactly one of regex, acronyms, words", where, "regex")
        label, weight = self.text(table, "label", where), self.weight(table.get("weight", "strong"), where, "weight")
        decisive = self.flag(table, "decisive", where)
        if given[0] == "acronyms":
            return Pattern(self.regex(table, "acronyms", where, acronym_pattern), label, weight, False, decisive)
        if given[0] == "words":
            expr = words_expr(self.strings(table, "words", where))
            return Pattern(word_pattern(expr), label, weight, True, decisive)
        return Pattern(self.regex(table, "regex", where, word_pattern), label, weight, True, decisive)

    def act(self, table: Mapping[str, Any], where: str) -> ReferenceAct:
        self.table(table, f"{where} act", {"ref", "name", "title_words"})
        ref = self.text(table, "ref", f"{where} act")
        found = find_all(ref)
        words = self.strings(table, "title_words", f"{where} act")
        if len(found) != 1:
            raise self.error(f"{ref!r} must name one act (a NOR, JORFTEXT, CELEX, EU regulation or directive number, "
                             f"a loi or décret number, or a date with title_words); found {len(found)}",
                             f"{where} act", "ref")
        act = found[0]
        if act.scheme in DATED_SCHEMES and not words:
            raise self.error(f"{ref!r} is only a date, which many acts share: name it by its number or NOR, or give "
                             "title_words (words of its title)", f"{where} act", "ref")
        if act.scheme not in UNIQUE_SCHEMES + DATED_SCHEMES:
            raise self.error(f"{ref!r} is not an act's identity ({act.scheme})", f"{where} act", "ref")
        return ReferenceAct(ref, act.scheme, act.value, str(table.get("name", "")),
                            tuple(fold(w) for w in words))

    def combination(self, table: Mapping[str, Any], where: str) -> Combination:
        where = f"{where} combination"
        self.table(table, where, {"label", "weight", "theme", "theme_min", "theme_given", "all", "title", "summary",
                                  "ignore"})
        patterns = table.get("all", [])
        if not isinstance(patterns, list):
            raise self.error("must be a list of regular expressions", where, "all")
        combination = Combination(
            self.text(table, "label", where), self.weight(table.get("weight", "strong"), where, "weight"),
            str(table.get("theme", "")), self.weight(table.get("theme_min", 0.0), where, "theme_min"),
            self.flag(table, "theme_given", where),
            tuple(self.regex({"all": p}, "all", where, word_pattern) for p in patterns),
            self.regex(table, "title", where, word_pattern) if "title" in table else None,
            self.regex(table, "summary", where, word_pattern) if "summary" in table else None,
            fold(str(table.get("ignore", ""))))
        if not (combination.theme or combination.all or combination.title or combination.summary):
            raise self.error("a combination needs a theme, all, title or summary", where, "theme")
        return combination

    def negative(self, table: Mapping[str, Any], where: str) -> Negative:
        where = f"{where} negative"
        self.table(table, where, {"label", "weight", "theme", "theme_min", "own_below", "no_legal_angle"})
        negative = Negative(self.text(table, "label", where), self.weight(table.get("weight", -2.0), where, "weight"),
                            str(table.get("theme", "")), self.weight(table.get("theme_min", 0.0), where, "theme_min"),
                            self.weight(table.get("own_below", 0.0), where, "own_below"),
                            self.flag(table, "no_legal_angle", where))
        if not (negative.theme or negative.no_legal_angle):
            raise self.error("a negative rule needs a theme or no_legal_angle", where, "theme")
        return negative

    def policy(self, table: Any, where: str) -> ModelPolicy:
        where = f"{where} model"
        self.table(table, where, {"add", "remove", "remove_grounded"})
        below = table.get("remove_grounded", 0.0)
        if not isinstance(below, int | float) or isinstance(below, bool) or not 0.0 <= below < 1.0:
            raise self.error("must be a probability in [0, 1) (0 = never)", where, "remove_grounded")
        return ModelPolicy(self.flag(table, "add", where, True), self.flag(table, "remove", where, True), float(below))

    def off_topic(self, table: Mapping[str, Any], number: int, ids: Sequence[str]) -> OffTopic:
        where = f"[[off_topic]] #{number}"
        self.table(table, where, {"label", "weight", "regex", "excludes", "unless_about"})
        spared = self.strings(table, "unless_about", where)
        if set(spared) - set(ids):
            raise self.error(f"names unknown theme(s) {', '.join(sorted(set(spared) - set(ids)))}", where,
                             "unless_about")
        pattern = Pattern(self.regex(table, "regex", where, word_pattern), self.text(table, "label", where),
                          self.weight(table.get("weight", -6.0), where, "weight"))
        return OffTopic(pattern, self.flag(table, "excludes", where, True), spared)

    # -- values -------------------------------------------------------------------------------------------------
    def table(self, table: Any, where: str, keys: set[str]) -> Mapping[str, Any]:
        if not isinstance(table, Mapping):
            raise self.error("must be a table", where)
        unknown = sorted(set(table) - keys)
        if unknown:
            raise self.error(f"unknown key(s) {', '.join(unknown)}", where)
        return table

    def tables(self, table: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise self.error("must be an array of tables", where, key)
        return value

    def text(self, table: Mapping[str, Any], key: str, where: str) -> str:
        value = table.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.error("missing or empty", where, key)
        return value

    def strings(self, table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(k, str) and k.strip() for k in value):
            raise self.error("must be a list of non-empty strings", where, key)
        return tuple(value)

    def flag(self, table: Mapping[str, Any], key: str, where: str, default: bool = False) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.error("must be true or false", where, key)
        return value

    def weight(self, value: Any, where: str, key: str) -> float:
        if isinstance(value, str) and value in WEIGHTS:
            return WEIGHTS[value]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise self.error(f"must be a number or one of {', '.join(WEIGHTS)}", where, key)

    def regex(self, table: Mapping[str, Any], key: str, where: str, build: Any) -> re.Pattern[str]:
        value = self.text(table, key, where)
        try:
            return build(value)  # type: ignore[no-any-return]
        except re.error as exc:
            raise self.error(f"not a valid regular expression ({exc})", where, key) from None
