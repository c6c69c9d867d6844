"""Wire text on the user's terminal: control characters escaped, no Rich markup read."""

from __future__ import annotations

import datetime as dt
import io

from rich.console import Console

from arko.cli.render import job_lines, jobs_table, slave_notes, tsv, wire
from arko.v1 import admin_pb2, jobs_pb2

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"


def test_wire_escapes_esc_c0_del_and_c1() -> None:
    """ESC, BEL, NUL, CR, DEL and CSI (C1) become \\xNN; printable text and non-ASCII stay."""
    assert wire(f"{TITLE}a\x00b\rc\x7fd\x9be\u00e9") == (
        "\\x1b]0;pwned\\x07a\\x00b\\x0dc\\x7fd\\x9be\u00e9"
    )


def test_wire_keeps_lines_and_tabs_only_when_multiline() -> None:
    """Output keeps its newlines and tabs; a one-line field (a method name) does not."""
    assert wire("a\n\tb\x1b", multiline=True) == "a\n\tb\\x1b"
    assert wire("a\n\tb") == "a\\x0a\\x09b"


def test_a_jobs_table_shows_no_raw_esc_nor_reads_markup() -> None:
    """A method with ESC sequences and [markup] prints them as text, on a terminal and piped."""
    job = jobs_pb2.Job(id="ab" * 16, method=f"{TITLE}[bold red]X{CLEAR}", state=jobs_pb2.FAILED)
    console = Console(width=200, file=io.StringIO(), force_terminal=False)
    console.print(jobs_table([job], NOW))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b" not in shown and "[bold red]X" in shown
    assert "\x1b" not in tsv(jobs_table([job], NOW))


def test_a_job_record_and_slave_notes_show_no_raw_control_characters() -> None:
    """Every wire field of ``arko job`` and a slave's reason are escaped; result keeps lines."""
    job = jobs_pb2.Job(
        id="ab" * 16,
        method="S.M",
        error=f"boom {TITLE}",
        result='{\n  "a": "\x1b[2J"\n}',
        cancelled_by=CLEAR,
        params={"x": TITLE},
    )
    text = "\n".join(job_lines(job))
    assert "\x1b" not in text and "\x07" not in text
    assert '{\n  "a": "\\x1b[2J"\n}' in text
    down = admin_pb2.SlaveInfo(address="127.0.0.1:1", status="DOWN", reason=CLEAR)
    assert slave_notes([down]) == ["* 127.0.0.1:1 DOWN: \\x1b[2J"]
