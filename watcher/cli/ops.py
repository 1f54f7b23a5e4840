"""Operations commands: ``daemon`` (run forever, one per archive) and ``status`` (what runs, what fails)."""

from __future__ import annotations

import json
import logging
import sys

import click

from watcher.cli.common import EXIT_FAILED, command, open_archive, options, rules_only_option, say
from watcher.util.clock import now_utc


@command()
@click.option("--no-notify", is_flag=True, help="classify but do not plan or send alerts")
@rules_only_option
def daemon(no_notify: bool) -> None:
    """Run forever: poll each source at its pace, classify and alert after each fetch that brought something, send
    digests at their times (SIGTERM or Ctrl-C finishes the running job, then stops)."""
    from watcher.daemon.instance import AlreadyRunning
    from watcher.daemon.schedule import Daemon, DaemonApp

    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise; sources log outcomes
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    opts = options()
    app = DaemonApp(opts.config_path, url_map=opts.url_map, host_delay=opts.host_delay, lock_wait=opts.lock_wait,
                    on_wait=say, rules_only=opts.rules_only)
    worker = Daemon(app, deliver=not no_notify)
    try:
        worker.acquire()
    except AlreadyRunning as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"watcher daemon: {len(worker.build().get_jobs())} job(s), pid {worker.pid}; SIGTERM or Ctrl-C "
               f"stops", err=True)
    sys.exit(worker.run())


@command()
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def status(as_json: bool) -> None:
    """Is the daemon running; each source's last run, next run, failures and incidents; the model; the ledger."""
    from watcher.daemon.status import gather, render

    app = open_archive()
    summary = gather(app.reader, app.config, now_utc())  # read only: never waits for a run that writes
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False, indent=2, default=str))
        return
    for line in render(summary):
        click.echo(line)


COMMANDS = (daemon, status)
