"""Run a command in a pseudo-terminal and render what a person would see, with `pyte`.

The raw output (`transcript`) has every redraw, carriage return and cursor move; assertions about
the screen must use `lines()`: the rendered 120x40 screen plus whatever scrolled off its top.
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
ROWS = 40
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
            env=env,
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
