"""Text helpers every part of watcher shares (sources, normalisation, classifiers): cleaning, HTML to text,
folding for comparisons, French month names, teasers. Pure functions, no I/O; imports nothing of watcher."""

from __future__ import annotations

import html
import re
import unicodedata
from xml.etree.ElementTree import Element

from selectolax.lexbor import LexborHTMLParser as HTMLParser

_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u202f\u2009]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
# C1 controls that are really Windows-1252 punctuation mis-decoded (e.g. U+0092 for a curly apostrophe)
# html_to_text: source line breaks are mere spaces in HTML; a break comes from block tags, marked before parsing
_BREAK = "\u2029"
_SOURCE_BREAKS = re.compile(r"[\r\n]+")
_BLOCK_TAG = re.compile(
    r"<(?=/?(?:p|div|br|hr|li|ul|ol|dl|dt|dd|h[1-6]|table|blockquote|pre|section|article|aside|"
    r"header|footer|nav|main|figure|figcaption|address|details|summary|form|fieldset)[\s/>])",
    re.I,
)
_CELL_TAG = re.compile(r"<(?=(?:td|th)[\s/>])", re.I)
_C1_FIX = {chr(c): bytes([c]).decode("cp1252", errors="replace") for c in range(0x80, 0xA0)}
_C1 = re.compile("[\x80-\x9f]")
_NEEDS_CLEANING = re.compile("[&\n\r\t\f\v\x80-\xa0\u00ad\u202f\u2009]")  # plus double spaces, see clean_text
_ENTITY = re.compile(r"&(?:nbsp|amp|quot|rsquo|lsquo|laquo|raquo|hellip|eacute|egrave|agrave|ccedil|#\d{2,6}|#x[0-9a-f]{2,5});",
                     re.I)


def _c1_fix(match: re.Match[str]) -> str:
    return _C1_FIX[match.group()]


def clean_text(text: str | None) -> str:
    """Unescape entities, NFC, fix C1 mojibake, collapse spaces, keep paragraph breaks."""
    if not text:
        return ""
    # (a character class alone is scanned twice as fast as with a "|  " alternative; "  " in text is a memchr)
    if not _NEEDS_CLEANING.search(text) and "  " not in text and unicodedata.is_normalized("NFC", text):
        return text.strip()  # the common case (a title, a category): nothing to unescape, fix or collapse
    text = html.unescape(text)
    if "&" in text and _ENTITY.search(text):
        text = html.unescape(text)  # double-escaped entities, e.g. cnil.fr's "22&amp;nbsp;mars" in RSS
    text = _C1.sub(_c1_fix, text)
    text = unicodedata.normalize("NFC", text).replace("\u00ad", "")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(fragment: str | None) -> str:
    """Visible text of an HTML fragment: block elements (p, div, li, h1..., br) end a line, inline elements
    (b, a, span, em...) stay in the flow of the sentence, table cells are separated by a space."""
    if not fragment:
        return ""
    if "<" not in fragment:
        return clean_text(fragment)
    marked = _CELL_TAG.sub(" <", _BLOCK_TAG.sub(_BREAK + "<", _SOURCE_BREAKS.sub(" ", fragment)))
    tree = HTMLParser(marked)
    for node in tree.css("script, style, template"):
        node.decompose()
    if "<t" in marked or "<T" in marked:
        for cell in tree.css("tr > :first-child"):  # a break typed between rows would be moved out of the table
            cell.insert_before(_BREAK)
    body = tree.body or tree.root
    if body is None:
        return ""
    return clean_text(body.text(deep=True, separator="").replace(_BREAK, "\n"))


_BLOCKS = frozenset({"p", "div", "table", "ul", "ol", "li", "blockquote", "pre", "center", "dl", "dt", "dd",
                     "h1", "h2", "h3", "h4", "h5", "h6"})
_CELLS = frozenset({"td", "th"})


def _flat(text: str | None) -> str:
    return text.replace("\n", " ") if text else ""  # a newline in the source HTML is only a space


def _cell(elem: Element) -> str:
    out: list[str] = []
    _render(elem, out)
    return " ".join("".join(out).split())


def _render(elem: Element, out: list[str]) -> None:
    tag = elem.tag.lower() if isinstance(elem.tag, str) else ""
    if tag == "br":
        out.append("\n")
        return
    if tag == "tr":
        out.append("\n" + " | ".join(_cell(cell) for cell in elem if str(cell.tag).lower() in _CELLS))
        return
    block = tag in _BLOCKS
    if block:
        out.append("\n")
    out.append(_flat(elem.text))
    for child in elem:
        _render(child, out)
        out.append(_flat(child.tail))
    if block:
        out.append("\n")


def fragment_text(elem: Element | None) -> str:
    """Visible text of an HTML fragment parsed as XML elements (DILA's ``CONTENU``): paragraphs and ``<br/>``
    as line breaks, one line per table row with cells (``td`` or ``th``) joined by ' | ', blank paragraphs
    dropped. Like ``normalize.html_to_text`` for paragraphs, without re-serialising the fragment.
    """
    if elem is None:
        return ""
    out: list[str] = []
    _render(elem, out)
    return clean_text("".join(out))


def teaser(text: str, limit: int = 500) -> str:
    """The first ``limit`` characters of ``text``, cut at a word, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"


def fold(text: str) -> str:
    """Lower case without accents, ligatures expanded, typographic apostrophes made plain: the form texts are
    compared in ('Œuvre d’Août' -> "oeuvre d'aout")."""
    text = text.replace("’", "'").replace("œ", "oe").replace("Œ", "OE")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


FRENCH_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
                 "novembre", "décembre")
_ABBREVIATIONS = {"janv": 1, "jan": 1, "fevr": 2, "fev": 2, "mar": 3, "avr": 4, "juil": 7, "sept": 9, "sep": 9,
                  "oct": 10, "nov": 11, "dec": 12}
MONTH_NUMBERS = {fold(name): n for n, name in enumerate(FRENCH_MONTHS, 1)} | _ABBREVIATIONS
"""Folded French month names and their usual abbreviations -> month number ('aout' -> 8, 'fevr' -> 2)."""


_NOR = re.compile(r"^[A-Z]{4}\d{7}[A-Z]$")


def is_nor(value: str) -> bool:
    """A NOR, the JORF's text number: four letters, seven digits, one letter (MICA2518811A)."""
    return bool(_NOR.match(value or ""))


def is_rectificatif_nor(nor: str) -> bool:
    """A NOR ending in Z is a rectificatif (MICA2518811A -> MICA2518811Z)."""
    return is_nor(nor) and nor.endswith("Z")


__all__ = ["FRENCH_MONTHS", "MONTH_NUMBERS", "clean_text", "fold", "fragment_text", "html_to_text", "is_nor", "is_rectificatif_nor",
           "teaser"]
