"""The fast XML path (C expat) is taken only for documents whose prolog can hold no DTD, so no entity."""

from __future__ import annotations

from xml.etree.ElementTree import ParseError

import pytest
from defusedxml import DefusedXmlException

from watcher.util.xmlsafe import fromstring, has_dtd

BOMB = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<rss><channel><title>&lol2;</title></channel></rss>")


@pytest.mark.parametrize(("data", "expected"), [
    (b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"/>', False),
    (b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- a comment with <markup> in it -->\n<feed/>', False),
    (b'  <?xml-stylesheet href="s.xsl"?>  <rdf:RDF xmlns:rdf="x"/>', False),
    (BOMB, True),
    (b'<?xml version="1.0"?>\n<!-- first a comment -->\n<!DOCTYPE rss SYSTEM "http://example.org/x.dtd"><rss/>', True),
    (b"<!ENTITY x 'y'><rss/>", True),
    (b"not xml at all", True),
    ('<?xml version="1.0" encoding="utf-16"?><rss/>'.encode("utf-16"), True),
])
def test_only_a_prolog_without_dtd_takes_the_fast_path(data: bytes, expected: bool) -> None:
    assert has_dtd(data) is expected


def test_entity_declarations_are_refused_wherever_they_stand() -> None:
    with pytest.raises(DefusedXmlException):
        fromstring(BOMB)
    late = b'<rss><!DOCTYPE x [<!ENTITY a "aaaaaaaa">]><title>&a;</title></rss>'
    assert has_dtd(late) is False  # not in the prolog: expat refuses it as a syntax error, expanding nothing
    with pytest.raises(ParseError):
        fromstring(late)


def test_a_well_formed_feed_parses_with_its_text() -> None:
    root = fromstring(b'\xef\xbb\xbf<?xml version="1.0"?><!-- c --><rss><title>Caf\xc3\xa9</title></rss>')
    assert root.tag == "rss" and root.findtext("title") == "Café"
