"""The ``watcher`` command: a thin client of the pipeline, the store, the sources and the alerts.

One module per area holds its commands and lists them in ``COMMANDS``; ``AREAS`` below names the modules. Adding
a command to an area is a change to that module only. What every command shares (``--config``, opening the App,
the clock, the error path and the exit codes) is in ``watcher.cli.common``. Area modules import their heavy
dependencies (the classifier, the notification stack) inside the commands, so ``watcher fetch`` does not load them.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import click

from store.lock import DEFAULT_WAIT
from watcher import __version__
from watcher.cli import alerts, archive, ingest, legal, newsletter, ops, themes
from watcher.cli.common import Options, clean_errors, config_option, rules_only_option
from watcher.util.redact import install as install_redaction

AREAS = (ingest, archive, legal, themes, alerts, newsletter, ops)


class WatcherGroup(click.Group):
    """The command group: the same one-line errors and exit codes for the group's own options."""

    def invoke(self, ctx: click.Context) -> object:
        with clean_errors():
            return super().invoke(ctx)


@click.group(cls=WatcherGroup)
@click.version_option(__version__, prog_name="watcher")
@config_option
@click.option("-v", "--verbose", is_flag=True, help="log progress and warnings to stderr")
@rules_only_option
@click.option("--lock-wait", type=click.FloatRange(min=0), default=DEFAULT_WAIT, show_default=True,
              metavar="SECONDS", help="when another watcher run is writing the archive, wait up to SECONDS for it, "
              "then exit (0: exit at once)")
@click.option("--replay", "replay_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="serve the recorded responses of this folder (e.g. watcher/replay_data) instead of the network")
@click.pass_context
def main(ctx: click.Context, verbose: bool, lock_wait: float, replay_dir: str | None) -> None:
    """Watch French legal and regulatory sources, tag items by theme, alert the right people."""
    logging.basicConfig(level=logging.INFO if verbose else logging.ERROR, format="%(levelname)s %(message)s")
    install_redaction()  # secrets never printed, at any level (httpx logs each request's URL at INFO)
    opts = ctx.ensure_object(Options)
    opts.lock_wait = lock_wait
    if replay_dir:
        from watcher.replay import ReplayServer

        server = ctx.with_resource(ReplayServer(Path(replay_dir)))
        opts.url_map, opts.host_delay = server.url_map, 0.0


for _area in AREAS:
    for _command in _area.COMMANDS:
        main.add_command(_command)


def run() -> None:
    """The ``watcher`` console script (and ``python -m watcher``): ``main`` in a process of its own. What exists
    once the modules are imported lives as long as the process, so it is exempted from every full garbage
    collection, the one at exit included (each would walk every module's objects again); garbage made afterwards is collected
    as usual. (Not in ``main``: tests and library callers invoke it inside a process they own.)"""
    gc.freeze()
    main()


__all__ = ["AREAS", "main", "run"]
