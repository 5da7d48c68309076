"""Byte transfers through the SDK: `content_hash`, uploads (sessions and the batch committer),
downloads; the pacer and the batcher are the generic mechanisms under them."""

from __future__ import annotations

from .content_hash import BLOCK_SIZE, ContentHasher, block_digests, content_hash
from .downloads import Downloads
from .uploads import SessionGone, Uploads


class Transfers(Uploads, Downloads):
    """The transfer layer of one client: uploads (with the one batch committer), downloads."""

    # Uploads.__init__ sets the client and pacer the downloads use too.


__all__ = [
    "BLOCK_SIZE",
    "ContentHasher",
    "Downloads",
    "SessionGone",
    "Transfers",
    "Uploads",
    "block_digests",
    "content_hash",
]
