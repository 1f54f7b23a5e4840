"""Parsing untrusted XML fast and safely.

A document without any DTD is parsed by the C parser of ``xml.etree`` (expat with C callbacks): with no DTD it can
declare no entity, so nothing can be expanded and nothing external is fetched. A document that has a ``<!DOCTYPE``
or an ``<!ENTITY`` goes through ``defusedxml``, which refuses entity declarations and external references. Same
contract as ``defusedxml.ElementTree.fromstring``: raises ``DefusedXmlException`` or ``xml.etree`` ``ParseError``.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element, XMLParser

import defusedxml.ElementTree as _defused

_PROLOG_MISC = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->)", re.S)  # XML declaration, processing instruction, comment
_ROOT_START = re.compile(rb"\s*<[^!?]")


def has_dtd(data: bytes) -> bool:
    """Whether the document may have a DTD: true unless its prolog (what comes before the root element) holds
    nothing but the XML declaration, processing instructions, comments and white space. A DOCTYPE can only
    stand in the prolog (expat rejects one anywhere else, as a syntax error, expanding nothing), so only the
    prolog is read, not the whole document. Anything unexpected there means "take the careful path"."""
    # UTF-16/32 documents hide their markup between zero bytes: always take the careful path for them
    if data[:4].count(0) or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    pos = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    while (misc := _PROLOG_MISC.match(data, pos)) is not None:
        pos = misc.end()
    return _ROOT_START.match(data, pos) is None


def fromstring(data: bytes) -> Element:
    if has_dtd(data):
        return _defused.fromstring(data)
    parser = XMLParser()
    parser.feed(data)
    return parser.close()


__all__ = ["fromstring", "has_dtd"]
