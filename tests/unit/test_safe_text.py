"""What reaches a terminal or a spreadsheet cannot run there."""

from __future__ import annotations

import csv
import io

from syncbackbone.domain.records import EventMeta, NewEvent, Position, StoredEvent
from syncbackbone.infra.app.audit_export import write_csv
from syncbackbone.infra.app.replay import HistoryEntry
from syncbackbone.infra.common.text import printable, spreadsheet_safe


def test_control_characters_and_ansi_escapes_are_shown_not_sent_to_the_terminal() -> None:
    shown = printable("title \x1b[2J\x1b]0;pwned\x07 done\r\nnext\u2028line")

    assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown and "\u2028" not in shown
    assert shown == "title \\x1b[2J\\x1b]0;pwned\\x07 done\\x0d\nnext\\x2028line"


def test_values_that_look_like_formulas_are_quoted_and_others_left_alone() -> None:
    assert [spreadsheet_safe(v) for v in ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx", "plain", 7, None]] == [
        "'=1+1",
        "'+cmd",
        "'-2+3",
        "'@SUM(A1)",
        "'\tx",
        "plain",
        7,
        None,
    ]


def test_the_csv_audit_export_neutralises_formula_looking_values() -> None:
    meta = EventMeta(actor='=HYPERLINK("http://evil","x")', occurred_at_ms=1)
    stored = StoredEvent(NewEvent("notes/n1", 1, "DocumentCreated", b"", meta), Position(0, 0), 1)
    entry = HistoryEntry(stored, {"title": "@me"})
    out = io.StringIO()
    write_csv([entry], out)

    (row,) = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["actor"] == '\'=HYPERLINK("http://evil","x")'
