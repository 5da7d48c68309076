"""Small in-memory requests and responses for the endpoints that are not API routes
(OAuth pages, the control API, temporary links): those never stream large bodies."""

from __future__ import annotations

import dataclasses
import json
from typing import Any


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    client_host: str

    def json(self) -> Any:
        """The body as JSON; an empty body is `{}`. Raises ValueError on anything else."""
        if not self.body.strip():
            return {}
        return json.loads(self.body.decode("utf-8"))


@dataclasses.dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, **headers: str) -> Response:
        return cls(status, json.dumps(payload).encode(), "application/json", dict(headers))

    @classmethod
    def text(cls, status: int, text: str, **headers: str) -> Response:
        return cls(status, text.encode(), "text/plain; charset=utf-8", dict(headers))

    @classmethod
    def html(cls, status: int, page: str, **headers: str) -> Response:
        return cls(status, page.encode(), "text/html; charset=utf-8", dict(headers))
