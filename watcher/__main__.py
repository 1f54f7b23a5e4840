"""``python -m watcher``: the same as the ``watcher`` command."""

from watcher.cli import run

run()
