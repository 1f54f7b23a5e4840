"""Every fault case, by explicit import (no discovery by name): add a module of ``@case`` functions here.

Areas and what they cover:
    ops      delivery: SMTP hung / refusing login / down then up / kill -9 / SIGTERM / two at once; webhook 5xx
             and 429; a failing source tells the admin; a second daemon is refused; SIGTERM stops the daemon
    fetch    a hostile HTTP server behind one source: 5xx, timeout, 429, HTML, bot wall, huge body, redirect loop
    config   bad TOML, unknown key, missing secret
    archive  two fetches at once, a secret webhook under ``-v``, a truncated feed; a really full disk (tmpfs), a
             read-only folder, a missing / corrupt / locked archive, a damaged full-text index
    web      the editors' door: throttling, cookie flags, logout, framing, odd paths, Markdown injection, raw HTML
To add cases: write a module of ``@case`` functions and import it below.
"""

from __future__ import annotations

import cases_config  # noqa: F401 - registers its cases
import cases_daemon  # noqa: F401 - registers its cases
import cases_delivery  # noqa: F401 - registers its cases
import cases_hardening  # noqa: F401 - registers its cases (issue 22: storage, config, DILA, channels, web)
import cases_robust  # noqa: F401 - registers its cases
import cases_sources  # noqa: F401 - registers its cases
from harness import CASES

__all__ = ["CASES"]
