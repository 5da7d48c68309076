"""Injected failures: POST /_emulator/faults arms one, the next `times` matching requests fail.

A fault matches a route by glob, against both the URL form (`files/upload_session/append_v2`)
and the handler key (`files/upload_session/append:2`); `oauth2/token` and `oauth2/authorize`
can be matched too.

An `entry_failure` fault (e.g. `{"route": "files/upload_session/finish_batch_v2",
"entry_failure": "too_many_write_operations", "times": 3}`) does not fail the request: the next
`times` *entries* of matching batch finishes (counted across calls) answer
`{".tag": "failure", "failure": {".tag": <entry_failure>}}` and stay uncommitted (their sessions
stay open, so the same entry can be committed again), while the other entries commit normally.
This is what Dropbox does to single entries of a batch under load. On
`files/upload_session/append_batch` the tag is one of its entry errors (`not_found`, `closed`,
`too_large`): that entry's bytes are not appended (its session stays as it was), the others are.

`"drop_connection": "after_processing"` loses the answer instead of the request: the call is
read and applied in full (state changed, stats counted) and then the socket is cut before any
response byte is sent, so the client sees a connection error for a call that landed. That is
what a retry after a lost answer meets on Dropbox: the append that already advanced the offset,
the commit that already created the file, the delete or move that already happened. For
download routes nothing is sent either (no headers, no body). `drop_connection: true` (with
`after_bytes`) still cuts before the route runs.

`"unknown_route": true` answers 400 text `Unknown API function: "<route>"` without running the
route, exactly as a route the emulator (or Dropbox, for an app or account) does not serve: what
a client that falls back from `upload_session/append_batch` or `start_batch` meets.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import threading
from typing import Any, Literal, Optional, Union

STATUSES = (429, 500, 503)
RATE_LIMIT_REASONS = ("too_many_requests", "too_many_write_operations")
# Void tags that single entries of a batch may answer: UploadSessionFinishError's for batch
# finishes (what Dropbox does to entries under load), UploadSessionAppendBatchEntryError's for
# append_batch. A fault only takes entries of a route whose union has its tag.
ENTRY_FAILURES = (
    "too_many_write_operations",
    "too_many_shared_folder_targets",
    "not_found",
    "closed",
    "too_large",
)
AFTER_PROCESSING = "after_processing"
# What shapes an answer, so nothing a lost answer can take.
_ANSWER_FIELDS = (
    "status",
    "reason",
    "retry_after",
    "after_bytes",
    "corrupt_body",
    "entry_failure",
    "unknown_route",
)


class FaultSpecError(ValueError):
    pass


@dataclasses.dataclass
class Fault:
    route: str
    times: int = 1
    status: int = 500
    reason: str = "too_many_requests"  # 429 only
    retry_after: int = 1  # 429 only; send 0 to keep the SDK's automatic retries fast
    # True: cut before the route runs; "after_processing": run it, then cut instead of answering.
    drop_connection: Union[bool, Literal["after_processing"]] = False
    after_bytes: Optional[int] = None  # with drop_connection true: read/send this much body first
    corrupt_body: bool = False  # download routes: flip one byte, keep the true metadata
    entry_failure: Optional[str] = None  # batch finishes: fail `times` entries, not the call
    # Answer 400 `Unknown API function: "<route>"`, as Dropbox answers a route it does not
    # serve (to this app or account): what a client falling back from a batch route meets.
    unknown_route: bool = False

    @classmethod
    def parse(cls, spec: Any) -> Fault:
        if not isinstance(spec, dict):
            raise FaultSpecError("a fault is a JSON object")
        unknown = set(spec) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise FaultSpecError(f"unknown fault fields: {sorted(unknown)}")
        route = spec.get("route")
        if not isinstance(route, str) or not route:
            raise FaultSpecError("'route' (a glob) is required")
        fault = cls(route=route.lstrip("/"))
        for name in ("times", "status", "retry_after", "after_bytes"):
            value = spec.get(name)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise FaultSpecError(f"'{name}' must be a non-negative integer")
            setattr(fault, name, value)
        corrupt_body = spec.get("corrupt_body", False)
        if not isinstance(corrupt_body, bool):
            raise FaultSpecError("'corrupt_body' must be true or false")
        fault.corrupt_body = corrupt_body
        unknown_route = spec.get("unknown_route", False)
        if not isinstance(unknown_route, bool):
            raise FaultSpecError("'unknown_route' must be true or false")
        if unknown_route and any(
            spec.get(name) not in (None, False)
            for name in ("status", "reason", "retry_after", "after_bytes", "corrupt_body")
        ):
            raise FaultSpecError(
                "'unknown_route' answers 400 \"Unknown API function\"; it takes no status, "
                "reason, retry_after, after_bytes or corrupt_body"
            )
        fault.unknown_route = unknown_route
        drop = spec.get("drop_connection", False)
        if not isinstance(drop, bool) and drop != AFTER_PROCESSING:
            raise FaultSpecError(f"'drop_connection' must be true, false or \"{AFTER_PROCESSING}\"")
        fault.drop_connection = drop
        fault._check_lost_answer(spec)
        fault._set_choices(spec)
        fault._check_combination()
        return fault

    @property
    def loses_answer(self) -> bool:
        return self.drop_connection == AFTER_PROCESSING

    def _check_lost_answer(self, spec: dict[str, Any]) -> None:
        if not self.loses_answer:
            return
        # `is`, not `in`: 0 == False, and `"retry_after": 0` is given all the same.
        given = [name for name in _ANSWER_FIELDS if spec.get(name) is not None]
        given = [name for name in given if spec[name] is not False]
        if given:
            raise FaultSpecError(
                f"'drop_connection': \"{AFTER_PROCESSING}\" runs the request and then closes "
                f"without any answer, so it takes no {', '.join(repr(n) for n in given)}; "
                "arm a separate fault for that"
            )

    def _set_choices(self, spec: dict[str, Any]) -> None:
        if "reason" in spec:
            if spec["reason"] not in RATE_LIMIT_REASONS:
                raise FaultSpecError(f"'reason' must be one of {list(RATE_LIMIT_REASONS)}")
            self.reason = spec["reason"]
        if spec.get("entry_failure") is not None:
            if spec["entry_failure"] not in ENTRY_FAILURES:
                raise FaultSpecError(f"'entry_failure' must be one of {list(ENTRY_FAILURES)}")
            if self.drop_connection or self.corrupt_body or self.unknown_route or "status" in spec:
                raise FaultSpecError(
                    "'entry_failure' fails entries of a batch; it takes no status, "
                    "drop_connection, corrupt_body or unknown_route"
                )
            self.entry_failure = spec["entry_failure"]

    def _check_combination(self) -> None:
        if self.status not in STATUSES:
            raise FaultSpecError(f"'status' must be one of {list(STATUSES)}")
        if self.times < 1:
            raise FaultSpecError("'times' must be at least 1")
        if self.after_bytes is not None and not self.drop_connection:
            raise FaultSpecError("'after_bytes' needs 'drop_connection'")
        if self.unknown_route and self.drop_connection is True:
            raise FaultSpecError("'unknown_route' answers; it takes no 'drop_connection'")

    def matches(self, *names: str) -> bool:
        return any(fnmatch.fnmatchcase(name, self.route) for name in names)

    def describe(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._armed.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def take(
        self, *names: str, download: bool = False, after_processing: bool = False
    ) -> Optional[Fault]:
        """The first armed fault matching one of `names`, used up once.

        A corrupt_body fault only applies to download-style requests; others skip it. A lost
        answer ("after_processing") only goes to callers that can run the request and then cut
        (`after_processing=True`, or `take_lost_answer`). Entry faults never fail a whole
        request (see `take_entry`).
        """
        with self._lock:
            for fault in self._armed:
                if fault.entry_failure is not None:
                    continue
                if fault.corrupt_body and not download:
                    continue
                if fault.loses_answer and not after_processing:
                    continue
                if fault.matches(*names):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._armed.remove(fault)
                    return dataclasses.replace(fault)
        return None

    def take_lost_answer(self, *names: str) -> bool:
        """Whether the answer to this request must be lost (an "after_processing" fault matched
        and was used up once)."""
        with self._lock:
            for fault in self._armed:
                if fault.loses_answer and fault.matches(*names):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._armed.remove(fault)
                    return True
        return False

    def take_entry(self, *names: str, tags: tuple[str, ...]) -> Optional[str]:
        """For one entry of a batch: the failure tag (one of `tags`, those of the route's
        per-entry union) it must answer, used up once."""
        with self._lock:
            for fault in self._armed:
                if fault.entry_failure in tags and fault.matches(*names):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._armed.remove(fault)
                    return fault.entry_failure
        return None

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.describe() for fault in self._armed]
