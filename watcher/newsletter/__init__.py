"""The editors' weekly newsletter: a draft built from the week's tagged items, edited on a web page or from the
CLI (shortlist, order, abstracts, introduction), previewed exactly as e-mailed, published to the list through the
delivery ledger, archived in Datasette. ``Newsletter`` (service.py) is the API; web and CLI are thin clients."""
