"""The fault suite as tests: one test per case (``make faults`` prints the same cases as a table)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cases import CASES
from harness import Case

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.mark.parametrize("fault", CASES, ids=[c.name for c in CASES])
def test_fault(fault: Case, tmp_path: Path) -> None:
    outcome = fault.run(tmp_path)
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    assert outcome.ok, f"{fault.name}: {outcome}"
