"""``make faults``: run every fault case against the real CLI and local servers, print a table case -> outcome.

    python tests/faults/run.py [--only NAME ...]

Exit status 1 if any case fails. The same cases run in the test suite (tests/faults/test_faults.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
for folder in (HERE, HERE.parent, HERE.parents[1]):
    sys.path.insert(0, str(folder))

from cases import CASES  # noqa: E402
from harness import Outcome  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="case names")
    parser.add_argument("--kills", type=int, default=60, help="kill -9 of deliver, over 2,000 mails from 50 on "
                        "(the test suite makes 3 over 200)")
    args = parser.parse_args()
    os.environ["WATCHER_FAULTS_KILLS"] = str(args.kills)
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    warnings.filterwarnings("ignore", message="Session.login_data is deprecated")
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's notes about the test servers' settings
    logging.getLogger("watcher").setLevel(logging.ERROR)  # the web cases build their archive: its expected warnings
    chosen = [c for c in CASES if not args.only or c.name in args.only]
    mark = {True: "yes", False: "NO"}
    print(f"{'case':<26} {'area':<7} {'no crash':<9} {'not lost':<9} {'no dup':<7} {'message':<8} {'result':<7} "
          f"{'s':>5}  detail")
    failed = 0
    for fault in chosen:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"watcher-fault-{fault.name}-") as tmp:
            try:
                outcome = fault.run(Path(tmp))
            except Exception as exc:  # the harness itself broke: show it as a failed case, go on
                outcome = Outcome(False, False, False, False, f"harness error {type(exc).__name__}: {exc}")
        failed += not outcome.ok
        print(f"{fault.name:<26} {fault.area:<7} {mark[outcome.no_crash]:<9} {mark[outcome.nothing_lost]:<9} "
              f"{mark[outcome.nothing_duplicated]:<7} {mark[outcome.message_shown]:<8} "
              f"{'SKIP' if outcome.skipped else 'PASS' if outcome.ok else 'FAIL':<7} "
              f"{time.perf_counter() - started:>5.1f}  {outcome.detail}",
              flush=True)
    print(f"{len(chosen) - failed}/{len(chosen)} cases hold")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
