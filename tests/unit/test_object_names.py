"""The md5 a DVC object's remote path names, and the streaming check against it."""

from __future__ import annotations

import hashlib

import pytest

from dvc_dropbox.transfer.content_hash import NameHasher, ObjectName, object_name

MD5 = "0123456789abcdef0123456789abcdef"


ROOTS = ("dvc/p",)  # the remote's folder, as DVC's adapter tells the filesystem


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/dvc/p/files/md5/{MD5[:2]}/{MD5[2:]}", ObjectName(MD5, legacy=False)),
        (f"/dvc/p/files/md5/{MD5[:2]}/{MD5[2:]}.dir", ObjectName(MD5, legacy=False)),
        (f"/dvc/p/{MD5[:2]}/{MD5[2:]}", ObjectName(MD5, legacy=True)),
        (f"/dvc/p/{MD5[:2]}/{MD5[2:]}.dir", ObjectName(MD5, legacy=True)),
        (f"DVC/P/{MD5[:2]}/{MD5[2:]}", ObjectName(MD5, legacy=True)),  # case-insensitive
        (f"/dvc/p/files/md5/{MD5[:2]}/{MD5[2:]}.tmp", None),
        (f"/dvc/p/files/md5/{MD5[:3]}/{MD5[3:]}", None),
        ("/dvc/p/data.csv", None),
        (f"/dvc/p/files/md5/{MD5[:2]}/{MD5[2:].upper()}", None),
        # Not DVC's layout below the root: a deeper bare `ab/<30 hex>` is a user's file.
        (f"/dvc/p/data/{MD5[:2]}/{MD5[2:]}", None),
        (f"/dvc/other/{MD5[:2]}/{MD5[2:]}", None),
        (f"/dvc/pq/{MD5[:2]}/{MD5[2:]}", None),
        # Outside any remote root only DVC 3's distinctive names are objects.
        (f"/elsewhere/files/md5/{MD5[:2]}/{MD5[2:]}", ObjectName(MD5, legacy=False)),
    ],
)
def test_object_name(path: str, expected: ObjectName | None) -> None:
    assert object_name(path, ROOTS) == expected


@pytest.mark.parametrize(
    "path",
    [f"{MD5[:2]}/{MD5[2:]}", f"/user/data/{MD5[:2]}/{MD5[2:]}", f"/dvc/p/{MD5[:2]}/{MD5[2:]}"],
)
def test_an_fsspec_users_ab_slash_hex_path_is_no_object(path: str) -> None:
    """Without a DVC remote root, a bare `ab/<30 hex>` (DVC 2's layout) is just a file."""
    assert object_name(path) is None


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
