"""The plugin as DVC sees it: class contract, registry, schema, `dvc doctor`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dropbox
import pytest

from dvc_dropbox.dvc import DropboxFileSystem

from .cli import DVC, dvc, make_repo


def test_class_contract() -> None:
    assert DropboxFileSystem.protocol == "dropbox"
    assert DropboxFileSystem.PARAM_CHECKSUM == "checksum"
    assert DropboxFileSystem.REQUIRES == {"dropbox": "dropbox"}
    assert DropboxFileSystem.get_missing_deps() == []
    assert DropboxFileSystem.TRAVERSE_WEIGHT_MULTIPLIER == 1
    assert DropboxFileSystem.LIST_OBJECT_PAGE_SIZE == 2000


def test_registry_resolves_the_class() -> None:
    from dvc.fs import get_cloud_fs

    cls, config, path = get_cloud_fs({}, url="dropbox://dvc/my-project", app_key="k")
    assert cls is DropboxFileSystem
    assert path == "dvc/my-project"
    assert config["app_key"] == "k"


def test_construction_is_cheap_and_offline() -> None:
    # DVC builds the class several times per command: no client, no network, no credentials.
    fs = DropboxFileSystem(url="dropbox://dvc/x")
    assert "fs" not in fs.__dict__


def test_doctor_lists_dropbox(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = subprocess.run(
        [DVC, "doctor"], cwd=tmp_path, env=cli_env, capture_output=True, text=True, timeout=300
    ).stdout
    assert f"dropbox (dropbox = {dropbox.__version__})" in out


def test_remote_options_in_the_schema() -> None:
    from dvc.config_schema import SCHEMA
    from voluptuous import Invalid

    validate = SCHEMA["remote"][str]
    conf = validate(
        {
            "url": "dropbox://dvc/my-project",
            "app_key": "abc123",
            "app_secret": "s3cr3t",
            "chunk_size": "64MiB",
            "batch_size": "500",
            "jobs": "8",
            "timeout": "60",
            "path_root": "home",
            "version_aware": "false",
        }
    )
    assert conf["batch_size"] == 500 and conf["jobs"] == 8 and conf["timeout"] == 60.0
    with pytest.raises(Invalid, match="extra keys not allowed"):
        validate({"url": "dropbox://dvc/my-project", "bogus": "1"})


def test_remote_add_and_modify(tmp_path: Path, cli_env: dict[str, str]) -> None:
    repo = make_repo(tmp_path / "repo", cli_env)
    dvc(repo, cli_env, "remote", "add", "-d", "myremote", "dropbox://dvc/my-project")
    dvc(repo, cli_env, "remote", "modify", "myremote", "app_key", "abc123")
    dvc(repo, cli_env, "remote", "modify", "--local", "myremote", "app_secret", "s3cr3t")
    config = (repo / ".dvc" / "config").read_text()
    assert "url = dropbox://dvc/my-project" in config
    assert "app_key = abc123" in config
    assert "s3cr3t" in (repo / ".dvc" / "config.local").read_text()


def test_startup_hook_imports_nothing_heavy() -> None:
    """The .pth line runs in every Python start (pip's too): installing the hook may load our
    two tiny modules and nothing else (importlib.abc alone would pull in ~30 modules)."""
    import dvc_dropbox

    src = str(Path(dvc_dropbox.__file__).parent.parent)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); before = set(sys.modules);"
        "import dvc_dropbox._startup as s; s.install();"
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", probe, src], capture_output=True, text=True, check=True
    ).stdout.split()
    assert set(out) <= {"dvc_dropbox", "dvc_dropbox._startup"}, out
    assert "dvc_dropbox._startup" in out
