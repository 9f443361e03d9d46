"""``bench idle`` on the embedded log, run as a user runs it: an idle ``serve`` and ``projections run`` append
nothing to the log or the bus (the processor sleeps on LISTEN until a command is sent).

The bench starts both processes in a namespace of its own, sends one command through, waits until it is
projected, then watches them idle; the window is a span to observe, not a timing that is asserted.
"""

from __future__ import annotations

import pytest
from support import cli

pytestmark = pytest.mark.slow


def test_an_idle_embedded_processor_and_projection_worker_append_nothing(env: dict[str, str]) -> None:
    done = cli("bench", "idle", "--seconds", "2", "--only", "embedded", env=env, timeout=300)

    assert done.returncode == 0, done.stderr[-2000:]
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("embedded log, idle")]
    assert ": 0 records appended (commands +0, events +0, results +0, dead_letters +0)" in line
    assert "nobody writes, +0" in done.stdout
