"""The terminal while dvc-dropbox talks to the user: every progress display stopped and cleared.

DVC draws progress with tqdm (`dvc.progress.Tqdm`, also behind its fsspec callbacks) and, for a few
operations, with rich (`dvc.ui.ui.status`, `RichCallback`). Both redraw from other threads and on
every update, so a prompt written between two redraws is overwritten: the screen then shows
`Pushingerification code:`. `Terminal` holds both libraries' locks for the whole conversation,
not only while writing, and takes the bars off the screen until it ends:

- tqdm: all bars share one lock (`tqdm.get_lock()`, an RLock that DVC installs). DVC's bars refresh
  with a non-blocking acquire, so while it is held they simply skip drawing; other tqdm bars wait.
  Bars are also taken out of tqdm's instance registry so that a message logged in the meantime
  (DVC logs through `Tqdm.external_write_mode`, which redraws every registered bar) and tqdm's
  monitor thread leave them alone. They are put back and redrawn below the conversation.
- rich: a `Live` display refreshes from its own thread under `Live._lock` and redraws itself after
  anything printed to its console. Its lock and its console's lock are held, its lines erased, and
  its console marked non-interactive meanwhile, so nothing redraws it; it repaints afterwards.

Everything here only touches libraries that are already imported: no bar, no import.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Optional, TextIO


def real_stream(stream: TextIO) -> TextIO:
    """The file behind rich's `FileProxy` (which buffers until a newline: a prompt would hang)."""
    for _ in range(4):  # proxies of proxies are possible; a cycle is not
        inner = getattr(stream, "rich_proxied_file", None)
        if inner is None:
            break
        stream = inner
    return stream


@contextlib.contextmanager
def _tqdm_paused(out: TextIO) -> Iterator[None]:
    tqdm_std = sys.modules.get("tqdm.std")
    tqdm_cls: Any = getattr(tqdm_std, "tqdm", None)
    if tqdm_cls is None:
        yield
        return
    lock = tqdm_cls.get_lock()
    lock.acquire()
    try:
        registry = getattr(tqdm_cls, "_instances", None)
        # tqdm wraps `fp` in an unhashable proxy that compares equal to the stream: no set here.
        terminals = [sys.stdout, sys.stderr, out]
        bars = [
            bar
            for bar in list(registry or ())
            if hasattr(bar, "start_t")
            and not bar.disable
            and any(bar.fp == stream for stream in terminals)
        ]
        for bar in bars:
            bar.clear(nolock=True)
            registry.discard(bar)  # type: ignore[union-attr]
        try:
            yield
        finally:
            for bar in bars:
                if not bar.disable:  # closed meanwhile: it is gone for good
                    registry.add(bar)  # type: ignore[union-attr]
                    bar.refresh(nolock=True)
    finally:
        lock.release()


def _rich_consoles() -> list[Any]:
    """Consoles that may carry a live display: DVC's (if created) and rich's global one."""
    found: list[Any] = []
    dvc_ui = sys.modules.get("dvc.ui")
    ui = getattr(dvc_ui, "ui", None)
    if ui is not None:
        # cached properties: present in the instance dict only once DVC has made them
        found += [vars(ui)[name] for name in ("error_console", "rich_console") if name in vars(ui)]
    rich = sys.modules.get("rich")
    if rich is not None and getattr(rich, "_console", None) is not None:
        found.append(rich._console)
    unique: dict[int, Any] = {id(console): console for console in found}
    return list(unique.values())


def _lives(console: Any) -> list[Any]:
    stack = getattr(console, "_live_stack", None)  # rich >= 13; rich 12 keeps one `_live`
    if stack is None:
        live = getattr(console, "_live", None)
        stack = [live] if live is not None else []
    return [live for live in stack if getattr(live, "_started", False)]


class _RichPause:
    def __init__(self, console: Any, lives: list[Any]):
        self.console = console
        self.lives = lives
        self.held: list[Any] = []
        self.interactive: Optional[bool] = None

    def __enter__(self) -> None:
        try:
            self._pause()
        except BaseException:
            self._release()
            raise

    def _pause(self) -> None:
        # Same order as rich itself (Live.refresh holds the live lock, then prints): no deadlock.
        for lock in [live._lock for live in self.lives] + [self.console._lock]:
            lock.acquire()
            self.held.append(lock)
        top = self.lives[0]
        render = top._live_render
        if render._shape is not None and self.console.is_terminal:
            self.console.control(render.position_cursor())  # erases the live lines
        render._shape = None  # so the next refresh starts below our text instead of erasing it
        self.interactive = self.console.is_interactive
        self.console.is_interactive = False  # printing no longer re-renders the live display

    def __exit__(self, *exc: object) -> None:
        self._release()
        top = self.lives[0]
        with top._lock:
            if getattr(top, "_started", False):
                top.refresh()

    def _release(self) -> None:
        if self.interactive is not None:
            self.console.is_interactive = self.interactive
            self.interactive = None
        while self.held:
            self.held.pop().release()


@contextlib.contextmanager
def _rich_paused() -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for console in _rich_consoles():
            lives = _lives(console)
            if not lives:
                continue
            try:
                stack.enter_context(_RichPause(console, lives))
            except AttributeError:
                # A rich version with other internals: its display may flicker, nothing worse.
                continue
        yield


class Terminal:
    """stdin/stderr for one conversation with the user, with no progress display in the way.

    Use as a context manager around everything that is shown or read (link, prompt, answer,
    confirmation); outside the context it writes like `print` to stderr.
    """

    def __init__(self, stdin: Optional[TextIO] = None, out: Optional[TextIO] = None):
        self.stdin = sys.stdin if stdin is None else stdin
        self.out = real_stream(sys.stderr if out is None else out)
        self._stack: Optional[contextlib.ExitStack] = None

    def __enter__(self) -> Terminal:
        stack = contextlib.ExitStack()
        try:
            # tqdm's lock first: DVC's log handler writes under it and may then print through
            # rich (Tqdm.write into rich's FileProxy), so the other order could deadlock.
            stack.enter_context(_tqdm_paused(self.out))
            stack.enter_context(_rich_paused())
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def read_line(self, prompt: str) -> Optional[str]:
        """One line typed by the user, stripped; None on end of input (Ctrl-D)."""
        self.write(prompt)
        line = self.stdin.readline()
        if not line:
            self.write("\n")  # Ctrl-D leaves the cursor after the prompt
            return None
        return line.strip()
