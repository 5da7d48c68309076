"""URL <-> path mapping and option parsing (pure logic)."""

from __future__ import annotations

import pytest

from dvc_dropbox import _register, options, urls
from dvc_dropbox.adapter import DropboxFileSystem
from dvc_dropbox.errors import DropboxConfigError
from dvc_dropbox.options import DEFAULT_CHUNK_SIZE, parse_chunk_size

MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("dropbox://dvc/my-project", "dvc/my-project"),
        ("dropbox://my-directory", "my-directory"),
        ("dropbox://dvc/my-project/", "dvc/my-project"),
        ("dropbox://Dvc/My Project/x.txt", "Dvc/My Project/x.txt"),  # case and spaces kept
        ("DROPBOX://dvc/x", "dvc/x"),
        ("DropBox://dvc/x", "dvc/x"),  # the scheme is case-insensitive (RFC 3986)
    ],
)
def test_url_to_path(url: str, path: str) -> None:
    assert urls.url_to_path(url) == path
    assert DropboxFileSystem._strip_protocol(url) == path
    assert urls.api_path(path) == "/" + path


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("dropbox:///x", "no third slash"),
        ("dropbox:////", "names no folder"),
        ("dropbox://", "names no folder"),
        ("dropbox://a//b", "empty path component"),
        ("dropbox://a/../b", "'..' path component"),
        ("dropbox://../b", "'..' path component"),
        ("dropbox://a/./b", "'.' or '..'"),
        # One slash or none: DVC would take these for local folders inside the repository.
        ("dropbox:/dvc/x", "followed by two slashes"),
        ("dropbox:dvc/x", "followed by two slashes"),
        ("DROPBOX:/x", "followed by two slashes"),
        ("DropBox:", "followed by two slashes"),
    ],
)
def test_bad_urls_name_the_right_form(url: str, why: str) -> None:
    assert urls.is_dropbox_url(url)
    with pytest.raises(urls.DropboxURLError, match="dropbox://dvc/my-project") as info:
        urls.url_to_path(url)
    assert why in str(info.value)
    assert f"invalid Dropbox URL {url!r}" in str(info.value)
    with pytest.raises(DropboxConfigError, match="invalid Dropbox URL"):
        DropboxFileSystem._strip_protocol(url)


@pytest.mark.parametrize(
    ("url", "meant"),
    [
        ("dropbox:/dvc/x", "dropbox://dvc/x"),
        ("dropbox:dvc/x", "dropbox://dvc/x"),
        ("DROPBOX:/x", "dropbox://x"),
        ("dropbox:///x", "dropbox://x"),
        ("dropbox://a//b/", "dropbox://a/b"),
        ("dropbox://", None),
        ("dropbox://a/../b", None),  # no single obvious reading
        ("dropbox://dvc/x", None),  # nothing to correct
    ],
)
def test_the_message_offers_the_corrected_url(url: str, meant: str | None) -> None:
    assert urls.corrected_url(url) == meant
    if meant is not None:
        assert f"did you mean {meant}?" in (urls.url_error(url) or "")


@pytest.mark.parametrize(
    ("url", "claimed"),
    [
        ("dropbox:/dvc/x", "dropbox:/dvc/x"),
        ("DropBox://dvc/x", "DropBox://dvc/x"),
        # As DVC rewrites `dropbox:/dvc/x` before validating: `dvc remote add` (relative to the
        # config's folder) and a hand-edited config (resolved against it; on Windows too).
        ("../dropbox:/dvc/x", "dropbox:/dvc/x"),
        ("/repo/.dvc/DROPBOX:x", "DROPBOX:x"),
        ("C:\\repo\\.dvc\\dropbox:\\dvc\\x", "dropbox:/dvc/x"),
        ("s3://bucket/dropbox:x", None),
        ("/data/my-dropbox:x", None),
        ("/data/dvc-storage", None),
        (None, None),
    ],
)
def test_urls_that_claim_the_dropbox_scheme(url: str | None, claimed: str | None) -> None:
    assert _register.claimed_url(url) == claimed


def test_only_dropbox_paths_are_stripped_of_the_scheme() -> None:
    assert urls.strip_protocol("DROPBOX:/dvc/x/") == "dvc/x"
    assert urls.strip_protocol("dropbox:dvc/x") == "dvc/x"
    assert not urls.is_dropbox_url("mydropbox://x")
    assert not urls.is_dropbox_url("/dropbox:x")


def test_path_round_trip() -> None:
    fs = DropboxFileSystem()
    assert fs.unstrip_protocol("dvc/my-project/files") == "dropbox://dvc/my-project/files"
    assert urls.api_path("") == ""
    assert urls.strip_protocol("dropbox://dvc/x/") == "dvc/x"
    assert urls.strip_protocol("/dvc/x") == "dvc/x"


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (None, DEFAULT_CHUNK_SIZE),
        ("48MiB", 48 * MiB),
        ("48M", 48 * MiB),
        ("48", 48 * MiB),
        (" 4 mib", 4 * MiB),
        ("148", 148 * MiB),
        (64, 64 * MiB),
        # A plain number from 4 MiB on is a byte count (MiB counts stop at 148).
        ("50331648", 48 * MiB),
        (50331648, 48 * MiB),
        ("4194304", 4 * MiB),
        (148 * MiB, 148 * MiB),
    ],
)
def test_chunk_size(value: object, size: int) -> None:
    assert parse_chunk_size(value) == size  # type: ignore[arg-type]
    # One rule everywhere: the filesystem reads the adapter's byte count the same way.
    assert DropboxFileSystem(url="dropbox://dvc/x", chunk_size=value).fs_args["chunk_size"] == size


@pytest.mark.parametrize(
    "value",
    [
        "5MiB",
        "200MiB",
        "150",  # neither a MiB count below 150 nor a byte count of at least 4 MiB
        "4194303",
        "50331649",
        str(150 * MiB),
        "0",
        "-4",
        "48KiB",
        "48.0",
        "4_194_304",
        "lots",
    ],
)
def test_bad_chunk_size(value: str) -> None:
    with pytest.raises(DropboxConfigError, match="multiple of 4 MiB below 150 MiB") as info:
        parse_chunk_size(value)
    assert str(info.value).endswith(f"not {value!r}")  # the value, quoted
    with pytest.raises(DropboxConfigError, match="multiple of 4 MiB below 150 MiB"):
        DropboxFileSystem(url="dropbox://dvc/x", chunk_size=value)


@pytest.mark.parametrize("value", ["home", "root", "1234567", "0"])
def test_path_root(value: str) -> None:
    assert options.path_root_value(value) == value


@pytest.mark.parametrize("value", ["Home", "Root", " home", "12a", "", "\u0661\u0662"])
def test_bad_path_root(value: str) -> None:
    with pytest.raises(ValueError) as info:
        options.path_root_value(value)
    assert (
        str(info.value)
        == f"path_root must be 'home', 'root' or a namespace id (digits), not {value!r}"
    )


def test_options_reach_the_fsspec_filesystem() -> None:
    fs = DropboxFileSystem(
        url="dropbox://dvc/x",
        app_key="k",
        chunk_size="64MiB",
        batch_size=100,
        jobs=3,
        timeout=30,
        path_root="home",
        worktree=False,
    )
    args = fs.fs_args
    assert args["skip_instance_cache"] is True
    assert (args["app_key"], args["chunk_size"], args["batch_size"]) == ("k", 64 * MiB, 100)
    assert (args["jobs"], args["timeout"], args["path_root"]) == (3, 30, "home")
    assert "worktree" not in args
    assert DropboxFileSystem().jobs == DropboxFileSystem._JOBS


def test_versions() -> None:
    fs = DropboxFileSystem
    assert fs.split_version("dvc/x/f.txt?rev=015e7c0ef2") == ("dvc/x/f.txt", "015e7c0ef2")
    assert fs.split_version("dvc/x/f.txt") == ("dvc/x/f.txt", None)
    assert fs.split_version("dvc/x/what?rev=not-hex") == ("dvc/x/what?rev=not-hex", None)
    assert fs.join_version("dvc/x/f.txt", "015e7c0ef2") == "dvc/x/f.txt?rev=015e7c0ef2"
    assert fs.join_version("dvc/x/f.txt", None) == "dvc/x/f.txt"
    with pytest.raises(ValueError):
        fs.join_version("dvc/x/f.txt?rev=015e7c0ef2", "015e7c0ef3")
    assert fs.version_path("dvc/f?rev=015e7c0ef2", "aaaaaaaaa1") == "dvc/f?rev=aaaaaaaaa1"
    assert fs.version_path("dvc/f?rev=015e7c0ef2", None) == "dvc/f"
    assert fs.coalesce_version("dvc/f?rev=015e7c0ef2", None) == ("dvc/f", "015e7c0ef2")
    assert fs.coalesce_version("dvc/f", "015e7c0ef2") == ("dvc/f", "015e7c0ef2")
    with pytest.raises(ValueError, match="mismatch"):
        fs.coalesce_version("dvc/f?rev=015e7c0ef2", "aaaaaaaaa1")
    assert fs._strip_protocol("dropbox://dvc/f?rev=015e7c0ef2") == "dvc/f?rev=015e7c0ef2"
    assert fs._get_kwargs_from_urls("dropbox://dvc/f?rev=015e7c0ef2")["version_aware"] is True
    assert "version_aware" not in fs._get_kwargs_from_urls("dropbox://dvc/f")
