"""content_hash as the transfer layer computes it: test vectors and incremental/rewind feeding."""

from __future__ import annotations

import hashlib
import os

import pytest

from dvc_dropbox.transfer import BLOCK_SIZE, ContentHasher, block_digests, content_hash

MiB = 1024 * 1024


def sdk_hash(data: bytes) -> str:
    """The algorithm of dropbox-api.md §4, spelled out independently (older SDKs lack a helper)."""
    blocks = [data[i : i + BLOCK_SIZE] for i in range(0, len(data), BLOCK_SIZE)]
    return hashlib.sha256(b"".join(hashlib.sha256(b).digest() for b in blocks)).hexdigest()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (b"abc", "4f8b42c22dd3729b519ba6f68d2da7cc5b2d606d05daed5ad5128cc03e6c6358"),
        (bytes(4 * MiB), "c7e946d101855255d919ef0c70718633adf77d3dfb3adeeecf5d0cb4e951be58"),
        (bytes(4 * MiB + 1), "14a4d47f23a30177885d9820122f17d2d3a55fe63f7f5c27b95f689e0b2accd6"),
        (b"a" * (10 * MiB), "576f896dca27a476b9c9429b4cc02588f94d59603c16dfce30ae58066da2ad55"),
    ],
)
def test_vectors(data: bytes, expected: str) -> None:
    assert content_hash(data) == expected
    hasher = ContentHasher()
    hasher.update(data)
    assert hasher.hexdigest() == expected


def test_feeding_chunks_with_digests_matches_sdk() -> None:
    data = os.urandom(3 * BLOCK_SIZE + 12345)
    chunk = 2 * BLOCK_SIZE
    hasher = ContentHasher()
    for offset in range(0, len(data), chunk):
        piece = data[offset : offset + chunk]
        last = offset + chunk >= len(data)
        hasher.feed(offset, piece, block_digests(piece), final=last)
    assert hasher.hexdigest() == sdk_hash(data)


def test_refeeding_after_a_rewind_counts_bytes_once() -> None:
    data = os.urandom(BLOCK_SIZE + 1000)
    hasher = ContentHasher()
    hasher.feed(0, data[:700_000])
    hasher.feed(500_000, data[500_000:900_000])  # overlaps what was hashed
    hasher.feed(0, data[:10])  # entirely old
    hasher.feed(900_000, data[900_000:], block_digests(data[900_000:]), final=True)
    assert hasher.size == len(data)
    assert hasher.hexdigest() == sdk_hash(data)
    with pytest.raises(ValueError):
        hasher.feed(len(data) + 5, b"gap")
