"""What every command shares: one ``--config`` option, one way to open the App, one clock, one error path.

Exit codes (every command, the same table; also in the README):

    0  done
    1  done, but some source or some delivery failed (recorded; see ``watcher sources`` / ``watcher deliveries``)
    2  configuration or usage error: a bad sources.toml or subscriptions file, a bad option, a missing secret
    3  storage error: the archive cannot be opened, read or written (read-only, locked, disk full)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from store import StoreError
from store.lock import DEFAULT_WAIT
from watcher.app import App
from watcher.util.clock import now_utc, parse_now
from watcher.util.errors import ConfigError, WatcherError
from watcher.util.redact import redact

F = Callable[..., Any]
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STORAGE = 0, 1, 2, 3
CONFIG_HELP = "path of sources.toml (default: the group's --config, $WATCHER_CONFIG or ./sources.toml)"


def exit_code(error: WatcherError | StoreError) -> int:
    """The exit code of an error that stops a command (see the table above)."""
    if isinstance(error, ConfigError):
        return EXIT_USAGE
    if isinstance(error, StoreError):
        return EXIT_STORAGE
    return EXIT_FAILED


@contextmanager
def clean_errors() -> Iterator[None]:
    """Turn a watcher error into one line on stderr and its exit code."""
    try:
        yield
    except (WatcherError, StoreError) as exc:  # the store's errors are its own (it depends on nothing of watcher)
        click.echo(f"error: {redact(str(exc))}", err=True)
        sys.exit(exit_code(exc))


class Command(click.Command):
    """A watcher command: errors go through ``clean_errors`` whether it runs in the group or alone (tests)."""

    def invoke(self, ctx: click.Context) -> Any:
        with clean_errors():
            return super().invoke(ctx)


@dataclass
class Options:
    """The group's options, kept on the context for the commands: each command's own ``--config`` wins."""

    config_path: str | None = None
    url_map: Callable[[str], str] | None = None
    host_delay: float | None = None
    lock_wait: float = DEFAULT_WAIT
    rules_only: bool = False
    app: App | None = None


def _remember_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        options = ctx.find_object(Options) or ctx.ensure_object(Options)
        options.config_path = value


def config_option(func: F) -> F:
    """``--config PATH``, accepted by the group and by every command."""
    return click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                        expose_value=False, is_eager=True, callback=_remember_config, help=CONFIG_HELP)(func)


def _remember_rules_only(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        options = ctx.find_object(Options) or ctx.ensure_object(Options)
        options.rules_only = True


def rules_only_option(func: F) -> F:
    """``--rules-only``, accepted by the group and by every command that classifies."""
    return click.option("--rules-only", is_flag=True, expose_value=False, is_eager=True,
                        callback=_remember_rules_only,
                        help='classify with rules and identifiers only, never load the embedding model (same as '
                             'model = "none" in [settings])')(func)


def rules_only() -> bool:
    """``--rules-only`` was given to this command or to the group."""
    return options().rules_only


def now_option(func: F) -> F:
    """``--now ISO``: pretend it is this time, to try schedules."""
    return click.option("--now", "now", default=None, metavar="ISO", callback=_parse_now,
                        help="pretend it is this time (ISO 8601, UTC if no offset), to try schedules")(func)


def _parse_now(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime:
    if not value:
        return now_utc()
    try:
        return parse_now(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r}", param_hint="--now") from None


def command(name: str | None = None, **kwargs: Any) -> Callable[[F], click.Command]:
    """A watcher command: the shared error path and ``--config``."""

    def decorate(func: F) -> click.Command:
        return click.command(name, cls=Command, **kwargs)(config_option(func))

    return decorate


def options() -> Options:
    ctx = click.get_current_context()
    return ctx.find_object(Options) or ctx.ensure_object(Options)


def open_app() -> App:
    """The App of this invocation (config, store, HTTP client, all opened lazily), closed when the command ends."""
    opts = options()
    if opts.app is None:
        opts.app = App(opts.config_path, url_map=opts.url_map, host_delay=opts.host_delay, lock_wait=opts.lock_wait,
                       on_wait=say, rules_only=opts.rules_only)
        click.get_current_context().find_root().call_on_close(_closer(opts))
    return opts.app


DEMO_ARCHIVE = Path("var/demo/watcher.db")  # where `watcher demo` (and `make demo`) writes its archive


def open_archive() -> App:
    """The App, for a command that only reads the archive: an archive that does not exist is an error (exit 2)
    that says where it was looked for, and names the demo's archive when there is one (opening it would create an
    empty one and show nothing, as if there were no news)."""
    app = open_app()
    path = app.config.database
    if not path.exists():
        hint = ("run `watcher fetch` (or `watcher demo`) first, or set [settings] database / $WATCHER_DATABASE "
                "to the archive")
        if DEMO_ARCHIVE.exists() and DEMO_ARCHIVE.resolve() != path.resolve():
            command = click.get_current_context().command_path.split(" ", 1)[-1]
            hint += f"; the demo's archive is {DEMO_ARCHIVE}: WATCHER_DATABASE={DEMO_ARCHIVE} watcher {command}"
        raise ConfigError(f"no archive at {path} (looked there: [settings] database / $WATCHER_DATABASE); {hint}",
                          file=str(app.config.path))
    return app


def _closer(opts: Options) -> Callable[[], None]:
    def close() -> None:
        if opts.app is not None:
            opts.app.close()
            opts.app = None

    return close


def say(message: str) -> None:
    """A line for the person at the terminal (stderr), e.g. that this run waits for another one."""
    click.echo(message, err=True)


def config_path() -> str | None:
    """The ``--config`` given to this command or to the group (None: $WATCHER_CONFIG or ./sources.toml)."""
    return options().config_path
