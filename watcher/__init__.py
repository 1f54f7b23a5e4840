"""watcher: watch French legal and regulatory sources, tag items by theme, alert the right people."""

__version__ = "0.1.0"
