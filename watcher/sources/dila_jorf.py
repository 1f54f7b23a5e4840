"""The ``dila-jorf`` kind: the Journal officiel "Lois et Décrets" from DILA's JORFSIMPLE open data.

``url`` is the folder ``https://echanges.dila.gouv.fr/OPENDATA/JORFSIMPLE/``; each run reads the new
``JORFSIMPLE_YYYYMMDD-HHMMSS.tar.gz`` deltas (see ``dila_common`` for the cursor). In an archive, every
``JORFCONT*.xml`` (an issue's table of contents) is read first and gives each text its rubric path
(``Décrets, arrêtés, circulaires > Textes généraux > Ministère de l'intérieur``; the journal's own name, the
``niv="1"`` level, is left out); then each ``JORFTEXT*.xml`` (one ``<TEXTE>``) becomes one ``Item``:

- ``id`` ``jorf:<JORFTEXT id>`` whatever the source's name, ``url``
  ``https://www.legifrance.gouv.fr/jorf/id/<id>``;
- ``title`` TITREFULL (else TITRE), ``summary`` the NOTICE or the start of the first article, ``text`` the
  visas then the articles (annex titles and ``Article N`` headings kept, tables one row per line);
- ``published`` DATE_PUBLI (midnight Europe/Paris, in UTC), ``legal_date`` the JO issue's date (DATE_PUBLI, else
  the date ORIGINE_PUBLI spells: "JORF n°0137 du 13 juin 2026"), ``nature`` NATURE, ``authority`` MINISTERE or
  AUTORITE;
- ``identifiers``: jorftext, nor, nor_base (the NOR without its last letter: equal for a text and its
  rectificatifs), eli, jorfcont, num, date_texte, the text's own number or date under its scheme (``decret``,
  ``loi``, ``arrete``...), and what its title, notice and visas cite as ``cites_<scheme>`` (comma-joined);
- ``extra``: num_parution, num_sequence, page_deb, page_fin, origine_publi, titre, and ``rectificatif`` (NOR
  ending in Z, or a title marked "(rectificatif)").

A JORFTEXT or JORFCONT file that is not well-formed (or tries entity expansion) is skipped with a warning; a
corrupt archive raises ``ParseError``.
"""

from __future__ import annotations

import re
from typing import ClassVar
from xml.etree.ElementTree import Element

from watcher.legal import identifiers as ids
from watcher.legal import legal_dates
from watcher.legal.normalize import clean_text, to_utc
from watcher.models import Item
from watcher.sources import dila_common as dila
from watcher.sources.dila_common import ArchiveContent, DilaDumpSource, parse_xml, text_at
from watcher.util.errors import ParseError
from watcher.util.text import fragment_text, is_rectificatif_nor

ARCHIVE = re.compile(r"JORFSIMPLE_\d{8}-\d{6}\.tar\.gz")
TEXT_URL = "https://www.legifrance.gouv.fr/jorf/id/"
_CONT_FILE = re.compile(r"(?:^|/)JORFCONT\d{12}\.xml$")
_TEXT_FILE = re.compile(r"(?:^|/)JORFTEXT\d{12}\.xml$")
# NATURE -> (scheme of its number, scheme of its date when it has no number)
_OWN_SCHEMES = {
    "LOI": ("loi", "loi_date"), "DECRET": ("decret", "decret_date"),
    "ORDONNANCE": ("ordonnance", "ordonnance_date"), "ARRETE": ("", "arrete"),
    "DELIBERATION": ("deliberation", ""),
}
_META = ("ID", "ID_ELI", "NATURE", "NUM", "NUM_PARUTION", "NUM_SEQUENCE", "NOR", "DATE_PUBLI", "DATE_TEXTE",
         "ORIGINE_PUBLI", "PAGE_DEB_PUBLI", "PAGE_FIN_PUBLI", "TITRE", "TITREFULL", "AUTORITE", "MINISTERE")


# --- the table of contents --------------------------------------------------------------------------

def _walk_toc(node: Element, path: list[str], rubrics: dict[str, str]) -> None:
    for child in node:
        if child.tag == "LIEN_TXT" and child.get("idtxt"):
            rubrics[child.get("idtxt", "")] = " > ".join(path)
        elif child.tag == "TM":
            title = clean_text(child.findtext("TITRE_TM") or "")
            below = path if child.get("niv") == "1" or not title else [*path, title]
            _walk_toc(child, below, rubrics)


def parse_sommaire(xml: bytes, *, source: str = "jorf") -> dict[str, str]:
    """{JORFTEXT id: rubric path} from a JORFCONT file (``<JO>``)."""
    root = dila.expect_root(parse_xml(xml, source=source, what="JORF sommaire"), "JO", source=source,
                       what="a JORF sommaire")
    rubrics: dict[str, str] = {}
    structure = root.find("STRUCTURE_TXT")
    if structure is not None:
        _walk_toc(structure, [], rubrics)
    return rubrics


# --- one text -----------------------------------------------------------------------------------------------

def _walk_struct(node: Element, parts: list[str]) -> None:
    for child in node:
        if child.tag == "SECTION_TA":
            parts.append(text_at(child, "TITRE_TA"))
            _walk_struct(child, parts)
        elif child.tag == "ARTICLE":
            content = fragment_text(child.find("BLOC_TEXTUEL/CONTENU"))
            num = text_at(child, "NUM")
            parts.append(f"Article {num}\n{content}" if num and content else content)


def _articles(root: Element) -> str:
    parts: list[str] = []
    struct = root.find("STRUCT")
    _walk_struct(struct if struct is not None else root, parts)
    return "\n\n".join(part for part in parts if part)


def _first_article(root: Element) -> str:
    contents = (fragment_text(article.find("BLOC_TEXTUEL/CONTENU")) for article in root.iter("ARTICLE"))
    return next((text for text in contents if text), "")


def _own_identity(meta: dict[str, str], title: str) -> dict[str, str]:
    """The text's own number (or date) under its scheme: {'decret': '2026-493'}, {'arrete': '2026-06-11'}."""
    number_scheme, date_scheme = _OWN_SCHEMES.get(meta["NATURE"].upper(), ("", ""))
    number = meta["NUM"] or (ids.first_by_scheme(title).get(number_scheme, "") if number_scheme else "")
    if number_scheme and number:
        return {number_scheme: number}
    return {date_scheme: meta["DATE_TEXTE"]} if date_scheme and meta["DATE_TEXTE"] else {}


def _identifiers(meta: dict[str, str], jorfcont: str, title: str, cited_in: str) -> dict[str, str]:
    nor = meta["NOR"]
    found = {"jorftext": meta["ID"], "nor": nor, "nor_base": ids.nor_base(nor), "eli": meta["ID_ELI"],
             "jorfcont": jorfcont, "num": meta["NUM"], "date_texte": meta["DATE_TEXTE"]}
    own = _own_identity(meta, title)
    found.update(own)
    found.update(ids.as_mapping(ids.by_scheme(cited_in), prefix="cites_",
                                exclude={**own, "nor": nor, "jorftext": meta["ID"], "eli": meta["ID_ELI"]}))
    return dila.present(found)


def _extra(meta: dict[str, str], title: str) -> dict[str, object]:
    extra: dict[str, object] = {
        "num_parution": meta["NUM_PARUTION"], "num_sequence": meta["NUM_SEQUENCE"],
        "page_deb": meta["PAGE_DEB_PUBLI"], "page_fin": meta["PAGE_FIN_PUBLI"],
        "origine_publi": meta["ORIGINE_PUBLI"], "titre": meta["TITRE"],
    }
    extra = dila.present(extra)
    extra["rectificatif"] = is_rectificatif_nor(meta["NOR"]) or "(rectificatif)" in title.lower()
    return extra


def text_item(root: Element, rubric: str = "", *, source: str = "jorf") -> Item:
    """One ``<TEXTE>`` element as an Item (see the module docstring for the fields)."""
    dila.expect_root(root, "TEXTE", source=source, what="a JORF text")
    meta = {tag: text_at(root, tag) for tag in _META}
    dila.expect_id(meta["ID"], "JORFTEXT", source=source, what="a JORF text")
    origine = root.find("ORIGINE_PUBLI")
    title = meta["TITREFULL"] or meta["TITRE"]
    notice = fragment_text(root.find("NOTICE/CONTENU"))
    visas = fragment_text(root.find("VISAS/CONTENU"))
    articles = _articles(root)
    return Item(
        id=f"jorf:{meta['ID']}", source=source, url=TEXT_URL + meta["ID"], title=title,
        summary=dila.excerpt(notice or _first_article(root)),
        text="\n\n".join(part for part in (visas, articles) if part),
        published=to_utc(meta["DATE_PUBLI"]), nature=meta["NATURE"],
        legal_date=legal_dates.parse_iso(meta["DATE_PUBLI"]) or legal_dates.parse_french(meta["ORIGINE_PUBLI"]),
        authority=meta["MINISTERE"] or meta["AUTORITE"], rubric=rubric,
        identifiers=_identifiers(meta, origine.get("id", "") if origine is not None else "", title,
                                 "\n".join((title, notice, visas))),
        extra=_extra(meta, title),
    )


def parse_text(xml: bytes, rubric: str = "", *, source: str = "jorf") -> Item:
    """One JORFTEXT file (``<TEXTE>``) as an Item; ``rubric`` comes from the issue's sommaire."""
    return text_item(parse_xml(xml, source=source, what="JORF text"), rubric, source=source)


# --- archives -----------------------------------------------------------------------------------------------

class DilaJorfSource(DilaDumpSource):
    """The JORF from DILA's JORFSIMPLE deltas (``url`` = the OPENDATA/JORFSIMPLE/ folder)."""

    kind: ClassVar[str] = "dila-jorf"
    archive_pattern: ClassVar[re.Pattern[str]] = ARCHIVE

    def read_archive(self, data: bytes, *, archive: str) -> ArchiveContent:
        """Items of one JORFSIMPLE delta, sommaires first; malformed members are skipped with a warning."""
        content = ArchiveContent(archive)
        rubrics: dict[str, str] = {}
        sommaires = self.members(data, content, _CONT_FILE)
        for found in content.read_each(sommaires, lambda xml: parse_sommaire(xml, source=self.name)):
            rubrics.update(found)
        texts = self.members(data, content, _TEXT_FILE)  # a second pass: each text read as it comes
        content.add_texts(texts, lambda xml: self._text_in(xml, rubrics), file="JORFTEXT")
        return content

    def _text_in(self, xml: bytes, rubrics: dict[str, str]) -> Item:
        root = parse_xml(xml, source=self.name, what="JORF text")
        return text_item(root, rubrics.get(text_at(root, "ID"), ""), source=self.name)

    def read_text(self, content: bytes, *, url: str) -> Item:
        """One JORFTEXT file (a sommaire or anything else is refused, naming the file)."""
        root = parse_xml(content, source=self.name, what=url or "JORF text")
        if root.tag != "TEXTE":
            raise ParseError(self.name, f"expected a JORFSIMPLE .tar.gz or a JORFTEXT file, got <{root.tag}>",
                             url=url or None)
        return text_item(root, source=self.name)
