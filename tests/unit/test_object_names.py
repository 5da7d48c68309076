"""The md5 a DVC object's remote path names, and the streaming check against it."""

from __future__ import annotations

import hashlib

import pytest

from dvc_dropbox.transfer.content_hash import NameHasher, ObjectName, object_name

MD5 = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/dvc/p/files/md5/{MD5[:2]}/{MD5[2:]}", ObjectName(MD5, legacy=False)),
        (f"/dvc/p/files/md5/{MD5[:2]}/{MD5[2:]}.dir", ObjectName(MD5, legacy=False)),
        (f"/dvc/p/{MD5[:2]}/{MD5[2:]}", ObjectName(MD5, legacy=True)),
        (f"/dvc/p/{MD5[:2]}/{MD5[2:]}.dir", ObjectName(MD5, legacy=True)),
        (f"/dvc/p/files/md5/{MD5[:2]}/{MD5[2:]}.tmp", None),
        (f"/dvc/p/files/md5/{MD5[:3]}/{MD5[3:]}", None),
        ("/dvc/p/data.csv", None),
        (f"/dvc/p/files/md5/{MD5[:2]}/{MD5[2:].upper()}", None),
    ],
)
def test_object_name(path: str, expected: ObjectName | None) -> None:
    assert object_name(path) == expected


def feed(hasher: NameHasher, data: bytes, size: int) -> NameHasher:
    for start in range(0, len(data), size):
        hasher.update(data[start : start + size])
    return hasher


@pytest.mark.parametrize("block", [1, 2, 3, 7, 1000])
def test_name_hasher(block: int) -> None:
    data = b"line one\r\nline two\r\n\r\nend\r"
    plain = hashlib.md5(data).hexdigest()
    unix = hashlib.md5(data.replace(b"\r\n", b"\n")).hexdigest()
    assert feed(NameHasher(ObjectName(plain, legacy=False)), data, block).matches()
    assert not feed(NameHasher(ObjectName(unix, legacy=False)), data, block).matches()
    # DVC 2 named text objects by md5-dos2unix; a CRLF split across two reads still counts.
    assert feed(NameHasher(ObjectName(unix, legacy=True)), data, block).matches()
    assert feed(NameHasher(ObjectName(plain, legacy=True)), data, block).matches()
    assert not feed(NameHasher(ObjectName(MD5, legacy=True)), data, block).matches()
