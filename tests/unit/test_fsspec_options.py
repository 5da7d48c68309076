"""`storage_options` -> DropboxFS settings: pure logic, no Dropbox needed (the emulator-backed
tests are in test_fsspec_stack.py)."""

from __future__ import annotations

import pickle
from typing import Any

import fsspec
import pytest

from dvc_dropbox import urls
from dvc_dropbox.connection import Settings
from dvc_dropbox.errors import DropboxConfigError
from dvc_dropbox.fs import DropboxFS
from dvc_dropbox.options import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_JOBS,
    STORAGE_OPTIONS,
)

MiB = 1024 * 1024


def test_options_map_onto_the_connection_settings() -> None:
    fs = DropboxFS(
        app_key=" key ",
        app_secret="secret",
        chunk_size="8MiB",
        batch_size=100,
        jobs=8,
        timeout=30,
        path_root="home",
        version_aware=True,
    )
    assert fs.settings == Settings(
        app_key="key",
        app_secret="secret",
        chunk_size=8 * MiB,
        batch_size=100,
        jobs=8,
        timeout=30.0,
        path_root="home",
    )
    assert fs.version_aware is True


def test_defaults() -> None:
    fs = DropboxFS()
    assert fs.settings == Settings()
    assert (fs.settings.chunk_size, fs.settings.batch_size, fs.settings.jobs) == (
        DEFAULT_CHUNK_SIZE,
        DEFAULT_BATCH_SIZE,
        DEFAULT_JOBS,
    )
    assert fs.version_aware is False


def test_string_values_as_fsspec_config_gives_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # fsspec's config (e.g. FSSPEC_DROPBOX_BATCH_SIZE=100) hands every value over as a string.
    monkeypatch.setitem(
        fsspec.config.conf,
        "dropbox",
        {"batch_size": "100", "jobs": "4", "timeout": "2.5", "version_aware": "true"},
    )
    fs = fsspec.filesystem("dropbox", chunk_size="12")
    assert isinstance(fs, DropboxFS)
    assert (fs.settings.batch_size, fs.settings.jobs, fs.settings.timeout) == (100, 4, 2.5)
    assert fs.settings.chunk_size == 12 * MiB
    assert fs.version_aware is True


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"app_kye": "k"}, "unknown Dropbox storage option 'app_kye' (did you mean 'app_key'?)"),
        ({"nonsense": "t"}, "unknown Dropbox storage option 'nonsense'; the options are app_key, "),
        ({"token": "t"}, "Dropbox credentials are not a storage option ('token'): set DROPBOX_"),
        ({"batch_size": 0}, "batch_size must be a whole number from 1 to 1000, not 0"),
        ({"batch_size": 1001}, "batch_size must be a whole number from 1 to 1000, not 1001"),
        ({"batch_size": "many"}, "batch_size must be a whole number from 1 to 1000, not 'many'"),
        ({"batch_size": True}, "batch_size must be a whole number from 1 to 1000, not True"),
        ({"jobs": 2.5}, "jobs must be a whole number >= 1, not 2.5"),
        ({"jobs": -1}, "jobs must be a whole number >= 1, not -1"),
        ({"timeout": "0.5"}, "timeout must be a number of seconds >= 1, not '0.5'"),
        ({"timeout": float("inf")}, "timeout must be a number of seconds >= 1, not inf"),
        ({"version_aware": "maybe"}, "version_aware must be true or false, not 'maybe'"),
        ({"app_key": 123}, "app_key must be a string, not int"),
        ({"chunk_size": "5MiB"}, "chunk_size must be a multiple of 4 MiB"),
    ],
)
def test_bad_options_are_refused_with_the_rule(options: dict[str, Any], message: str) -> None:
    with pytest.raises(DropboxConfigError) as caught:
        DropboxFS(**options)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)  # what fsspec/pandas callers catch


def test_the_listed_options_are_the_accepted_ones() -> None:
    message = ""
    try:
        DropboxFS(nonsense=1)
    except DropboxConfigError as exc:
        message = str(exc)
    assert message.endswith("the options are " + ", ".join(STORAGE_OPTIONS))
    for name in STORAGE_OPTIONS:
        DropboxFS(**{name: None})  # each listed option is a real keyword


def test_fsspec_generic_options_are_accepted() -> None:
    DropboxFS(use_listings_cache=False, listings_expiry_time=10, max_paths=5)
    # skip_instance_cache is consumed by fsspec itself (DVC passes it).
    DropboxFS(skip_instance_cache=True)


def test_pickles_with_its_options() -> None:
    # Dask and multiprocessing ship filesystems to workers by pickling them.
    fs = DropboxFS(app_key="k", chunk_size="4MiB", batch_size=7)
    copy = pickle.loads(pickle.dumps(fs))
    assert isinstance(copy, DropboxFS)
    assert copy.settings == fs.settings


@pytest.mark.parametrize(
    ("url", "api_path"),
    [
        ("dropbox://dvc/data.csv", "/dvc/data.csv"),
        ("dropbox://dvc/my-project/sub/x.parquet", "/dvc/my-project/sub/x.parquet"),
        ("dropbox://dvc/", "/dvc"),
    ],
)
def test_url_names_the_folder_dvc_means(url: str, api_path: str) -> None:
    # As for a DVC remote (dropbox://dvc/my-project is /dvc/my-project): the netloc is the
    # first folder below the Dropbox root.
    assert urls.api_path(DropboxFS._strip_protocol(url)) == api_path
    assert fsspec.core.url_to_fs(url)[1] == api_path.lstrip("/")


@pytest.mark.parametrize("name", ["token", "access_token", "refresh_token"])
def test_a_token_passed_as_option_is_refused_and_not_repeated(name: str) -> None:
    secret = "sl.u.AbCdEf0123456789-secret"
    with pytest.raises(DropboxConfigError) as caught:
        DropboxFS(**{name: secret})
    assert secret not in str(caught.value)
    assert "DROPBOX_REFRESH_TOKEN" in str(caught.value)
