"""What a person sees: a command run in a 120x40 pseudo-terminal, rendered by `pyte`.

The raw output (`PtyScreen.transcript`) has every redraw, carriage return and cursor move;
assertions about the screen use `lines()`: the rendered screen plus whatever scrolled off its top.
One home for this in the test suite: interactive runs (`PtyScreen`), whole runs without input
(`run_on_screen`, `screen_of`) and text rendered on its own (`render`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import pexpect
import pyte

COLUMNS = 120
ROWS = LINES = 40
READ_SLICE_S = 0.1


class PtyScreen:
    """One command on a 120x40 terminal, its output fed into a terminal emulator as it comes."""

    def __init__(
        self,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        *,
        timeout: float = 180,
        columns: int = COLUMNS,
        rows: int = ROWS,
    ):
        self.columns = columns
        self.timeout = timeout
        self.screen = pyte.HistoryScreen(columns, rows, history=5000)
        self.stream = pyte.Stream(self.screen)
        self.transcript = ""
        self.eof = False
        self.child = pexpect.spawn(
            argv[0],
            argv[1:],
            cwd=str(cwd),
            # The size it sees, so wrapping (and DVC's bar widths) are what a person gets.
            env={**env, "COLUMNS": str(columns), "LINES": str(rows)},
            encoding="utf-8",
            codec_errors="replace",
            dimensions=(rows, columns),
            timeout=timeout,
        )

    # -- reading --------------------------------------------------------------------------------

    def pump(self, seconds: float) -> None:
        """Read (and render) whatever the command writes during `seconds`."""
        deadline = time.monotonic() + seconds
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                chunk = self.child.read_nonblocking(65536, timeout=min(left, READ_SLICE_S))
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                self.eof = True
                return
            self.transcript += chunk
            self.stream.feed(chunk)

    def wait_for(
        self, condition: Callable[[], bool], what: str, timeout: Optional[float] = None
    ) -> None:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not condition():
            if self.eof or time.monotonic() > deadline:
                raise AssertionError(
                    f"never saw {what} (exited: {self.eof}); screen:\n" + "\n".join(self.lines())
                )
            self.pump(READ_SLICE_S)

    def wait_for_output(self, pattern: str, timeout: Optional[float] = None) -> re.Match[str]:
        """Wait until the raw output matches `pattern` (a regex); returns the match."""
        found: list[re.Match[str]] = []

        def seen() -> bool:
            match = re.search(pattern, self.transcript)
            if match:
                found.append(match)
            return bool(match)

        self.wait_for(seen, repr(pattern), timeout)
        return found[0]

    def finish(self) -> int:
        """Read to the end; the exit status (a signal counts as 128 + signal number)."""
        self.pump(self.timeout)
        assert self.eof, "the command did not end in time"
        self.child.close()
        if self.child.exitstatus is not None:
            return self.child.exitstatus
        return 128 + (self.child.signalstatus or 0)

    # -- what a person sees ---------------------------------------------------------------------

    def _text(self, line: dict[int, pyte.screens.Char]) -> str:
        return "".join(line[x].data for x in range(self.columns)).rstrip()

    def display(self) -> list[str]:
        """The 40 lines on the screen now (trailing blanks stripped)."""
        return [line.rstrip() for line in self.screen.display]

    def lines(self) -> list[str]:
        """Everything a person could read: lines scrolled off the top, then the screen."""
        return [self._text(line) for line in self.screen.history.top] + self.display()

    def printed_lines(self) -> list[str]:
        """`lines()` with the terminal's wrapping undone: the lines as the command printed them.

        A message longer than the screen is wide continues on the next row, and where it breaks
        depends on what precedes it (a path, a process id): a phrase searched in `lines()` may be
        cut in two. A row whose last cell was written continues on the next one (pyte stores
        only cells that were written, so a space there counts, an untouched blank does not).
        """
        rows = list(self.screen.history.top) + [
            self.screen.buffer[y] for y in range(self.screen.lines)
        ]
        printed: list[str] = []
        continued = False
        for row in rows:
            text = "".join(row[x].data for x in range(self.columns))
            if continued:
                printed[-1] += text
            else:
                printed.append(text)
            continued = (self.columns - 1) in row
        return [line.rstrip() for line in printed]

    # -- typing ---------------------------------------------------------------------------------

    def type(self, text: str, settle: float = 0.5) -> None:
        """Type `text` (no Enter), then keep rendering for `settle` seconds."""
        self.child.send(text)
        self.pump(settle)

    def enter(self) -> None:
        self.child.send("\r")

    def control(self, char: str) -> None:
        self.child.sendcontrol(char)

    def close(self) -> None:
        if not self.child.closed:
            self.child.close(force=True)


def find_line(lines: list[str], predicate: Callable[[str], bool]) -> int:
    """Index of the last line that satisfies `predicate`, or -1."""
    for index in range(len(lines) - 1, -1, -1):
        if predicate(lines[index]):
            return index
    return -1


def joined(lines: list[str], start: int, count: int) -> str:
    """Lines `start..start+count` joined: a long line the terminal wrapped, read back whole."""
    return "".join(lines[start : start + count])


def render(text: str, columns: int = COLUMNS, rows: int = ROWS) -> list[str]:
    """`text` as a terminal of that size shows it: the screen's lines, trailing blanks dropped."""
    screen = pyte.Screen(columns, rows)
    pyte.Stream(screen).feed(text)
    lines = [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def run_on_screen(
    program: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float = 180
) -> tuple[int, list[str]]:
    """Run to the end without input; (exit status, rendered lines, trailing blanks dropped)."""
    term = PtyScreen([program, *args], cwd, env, timeout=timeout)
    try:
        status = term.finish()
    finally:
        term.close()
    lines = term.lines()
    while lines and not lines[-1]:
        lines.pop()
    return status, lines


class Screen:
    """The end state of a whole run: its rendered lines and exit status."""

    def __init__(self, lines: list[str], exit_status: int):
        self.lines = lines
        self.exit_status = exit_status

    def message(self, first: str) -> str:
        """The text wrapped over the lines from the one starting with `first` (pyte breaks a long
        line at exactly COLUMNS, mid-word, so the pieces join without a separator)."""
        start = next(i for i, line in enumerate(self.lines) if line.startswith(first))
        text = ""
        for line in self.lines[start:]:
            text += line
            if len(line) < COLUMNS:
                break
        return text

    def __str__(self) -> str:
        return "\n".join(line for line in self.lines if line)


def screen_of(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> Screen:
    status, lines = run_on_screen(argv[0], argv[1:], cwd, env, timeout)
    return Screen(lines, status)


def squash(text: str) -> str:
    """`text` without any whitespace: a phrase still matches when the terminal wrapped it."""
    return "".join(text.split())


def shows(lines: list[str], phrase: str) -> bool:
    """True if `phrase` is on the screen, possibly wrapped over several lines."""
    return squash(phrase) in squash("".join(lines))
