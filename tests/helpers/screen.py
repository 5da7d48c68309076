"""What a person sees: a command run in a 120x40 pseudo-terminal, rendered by `pyte`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pexpect
import pyte

COLUMNS, LINES = 120, 40


def spawn(
    program: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float = 180
) -> pexpect.spawn:
    """`program` under a 120x40 pty (the size it sees, so wrapping is what a person gets)."""
    return pexpect.spawn(
        program,
        args,
        cwd=str(cwd),
        env={**env, "COLUMNS": str(COLUMNS), "LINES": str(LINES)},
        encoding="utf-8",
        timeout=timeout,
        dimensions=(LINES, COLUMNS),
    )


class Terminal:
    """Feeds everything a child printed into a pyte screen; keeps lines scrolled off the top."""

    def __init__(self) -> None:
        self.screen = pyte.HistoryScreen(COLUMNS, LINES, history=1000)
        self.stream = pyte.Stream(self.screen)

    def feed(self, text: Optional[str]) -> None:
        if text:
            self.stream.feed(text)

    def lines(self) -> list[str]:
        """Every line a person could scroll back to, then the screen, trailing blanks dropped."""
        history = [
            "".join(line[col].data for col in range(COLUMNS)).rstrip()
            for line in self.screen.history.top
        ]
        shown = [line.rstrip() for line in self.screen.display]
        while shown and not shown[-1]:
            shown.pop()
        return history + shown


def run_on_screen(
    program: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float = 180
) -> tuple[int, list[str]]:
    """Run to the end without input; (exit status, rendered lines)."""
    child = spawn(program, args, cwd, env, timeout)
    term = Terminal()
    child.expect(pexpect.EOF)
    term.feed(child.before)
    child.close()
    status = child.exitstatus if child.exitstatus is not None else 128 + (child.signalstatus or 0)
    return status, term.lines()


def squash(text: str) -> str:
    """`text` without any whitespace: a phrase still matches when the terminal wrapped it."""
    return "".join(text.split())


def shows(lines: list[str], phrase: str) -> bool:
    """True if `phrase` is on the screen, possibly wrapped over several lines."""
    return squash(phrase) in squash("".join(lines))
