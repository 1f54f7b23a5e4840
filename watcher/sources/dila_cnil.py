"""The ``dila-cnil`` kind: CNIL délibérations (sanctions, recommandations, avis...) from DILA's open data.

``url`` is the folder ``https://echanges.dila.gouv.fr/OPENDATA/CNIL/``; each run reads the new
``CNIL_YYYYMMDD-HHMMSS.tar.gz`` deltas (see ``dila_common`` for the cursor; the ``Freemium_cnil_global_*``
stock is never read). Each ``CNILTEXT*.xml`` (one ``<TEXTE_CNIL>``) becomes one ``Item``:

- ``id`` ``cnil:<CNILTEXT id>`` whatever the source's name, ``url``
  ``https://www.legifrance.gouv.fr/cnil/id/<id>``;
- ``title`` TITREFULL (else TITRE), ``text`` BLOC_TEXTUEL/CONTENU (blank paragraphs dropped, typographic
  apostrophes kept), ``summary`` the start of its first paragraph of substance;
- ``nature`` NATURE_DELIB ("Sanction", "Recommandation/Lignes directrices"...; else NATURE), also the item's
  only tag; ``published`` DATE_PUBLI (else DATE_TEXTE), ``legal_date`` the délibération's date (DATE_TEXTE, as
  in "Délibération n° 2026-047 du 2 avril 2026"; else DATE_PUBLI), ``authority`` the CNIL;
- ``identifiers``: cnil, deliberation (NUMERO), nor, nor_base, date_texte, and what the text cites as
  ``cites_<scheme>`` (``cites_eu_regulation: 2016/679``, ``cites_loi: 78-17``...);
- ``extra``: etat_juridique, nature (DELIBERATION / DECISION), titre, origine_publi, pages.
"""

from __future__ import annotations

import re
from typing import ClassVar
from xml.etree.ElementTree import Element

from watcher.legal import identifiers as ids
from watcher.legal import legal_dates
from watcher.legal.normalize import to_utc
from watcher.models import Item
from watcher.sources import dila_common as dila
from watcher.sources.dila_common import ArchiveContent, DilaDumpSource, parse_xml, text_at
from watcher.util.text import fragment_text

ARCHIVE = re.compile(r"CNIL_\d{8}-\d{6}\.tar\.gz")
TEXT_URL = "https://www.legifrance.gouv.fr/cnil/id/"
AUTHORITY = "Commission nationale de l'informatique et des libertés"
_TEXT_FILE = re.compile(r"(?:^|/)CNILTEXT\d{12}\.xml$")
_META = "META/META_SPEC/META_CNIL/"
_FIELDS = ("TITRE", "TITREFULL", "NUMERO", "NOR", "NATURE_DELIB", "DATE_TEXTE", "DATE_PUBLI",
           "ETAT_JURIDIQUE", "ORIGINE_PUBLI", "PAGE_DEB_PUBLI", "PAGE_FIN_PUBLI")


def _identifiers(cnil_id: str, meta: dict[str, str], cited_in: str) -> dict[str, str]:
    own = {"cnil": cnil_id, "deliberation": meta["NUMERO"], "nor": meta["NOR"]}
    found = {**own, "nor_base": ids.nor_base(meta["NOR"]), "date_texte": meta["DATE_TEXTE"]}
    found.update(ids.as_mapping(ids.by_scheme(cited_in), prefix="cites_", exclude=own))
    return dila.present(found)


def _extra(nature: str, meta: dict[str, str]) -> dict[str, object]:
    extra = {"etat_juridique": meta["ETAT_JURIDIQUE"], "nature": nature, "nature_delib": meta["NATURE_DELIB"],
             "titre": meta["TITRE"],
             "origine_publi": meta["ORIGINE_PUBLI"], "page_deb": meta["PAGE_DEB_PUBLI"],
             "page_fin": meta["PAGE_FIN_PUBLI"]}
    return dila.present(extra)


def text_item(root: Element, *, source: str = "cnil-deliberations") -> Item:
    """One ``<TEXTE_CNIL>`` element as an Item (see the module docstring for the fields)."""
    dila.expect_root(root, "TEXTE_CNIL", source=source, what="a CNIL text")
    cnil_id = dila.expect_id(text_at(root, "META/META_COMMUN/ID"), "CNILTEXT", source=source, what="a CNIL text")
    meta = {name: text_at(root, _META + name) for name in _FIELDS}
    nature = text_at(root, "META/META_COMMUN/NATURE")
    title = meta["TITREFULL"] or meta["TITRE"]
    text = fragment_text(root.find("BLOC_TEXTUEL/CONTENU"))
    return Item(
        id=f"cnil:{cnil_id}", source=source, url=TEXT_URL + cnil_id, title=title,
        summary=dila.excerpt(text), text=text, published=to_utc(meta["DATE_PUBLI"] or meta["DATE_TEXTE"]),
        nature=meta["NATURE_DELIB"] or nature, authority=AUTHORITY,
        legal_date=legal_dates.parse_iso(meta["DATE_TEXTE"]) or legal_dates.parse_iso(meta["DATE_PUBLI"]),
        identifiers=_identifiers(cnil_id, meta, f"{title}\n{text}"),
        tags=(meta["NATURE_DELIB"],) if meta["NATURE_DELIB"] else (), extra=_extra(nature, meta),
    )


def parse_text(xml: bytes, *, source: str = "cnil-deliberations") -> Item:
    """One CNILTEXT file as an Item."""
    return text_item(parse_xml(xml, source=source, what="CNIL text"), source=source)


class DilaCnilSource(DilaDumpSource):
    """CNIL délibérations from DILA's CNIL deltas (``url`` = the OPENDATA/CNIL/ folder)."""

    kind: ClassVar[str] = "dila-cnil"
    archive_pattern: ClassVar[re.Pattern[str]] = ARCHIVE

    def read_archive(self, data: bytes, *, archive: str) -> ArchiveContent:
        """Items of one CNIL delta; malformed members are skipped with a warning."""
        content = ArchiveContent(archive)
        content.add_texts(self.members(data, content, _TEXT_FILE), lambda xml: parse_text(xml, source=self.name), file="CNILTEXT")
        return content

    def read_text(self, content: bytes, *, url: str) -> Item:
        return parse_text(content, source=self.name)
