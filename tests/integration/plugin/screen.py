"""What a person sees: a command run under a pseudo-terminal, rendered on a 120x40 screen."""

from __future__ import annotations

from pathlib import Path

COLUMNS, LINES = 120, 40


def screen_of(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> Screen:
    import pexpect
    import pyte

    child = pexpect.spawn(
        argv[0], argv[1:], cwd=str(cwd), env=env, dimensions=(LINES, COLUMNS), timeout=timeout
    )
    output = child.read()  # until the command exits
    child.close()
    screen = pyte.Screen(COLUMNS, LINES)
    pyte.ByteStream(screen).feed(output)
    return Screen([line.rstrip() for line in screen.display], child.exitstatus)


class Screen:
    def __init__(self, lines: list[str], exit_status: int | None):
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
