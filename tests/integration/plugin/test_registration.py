"""The plugin as DVC sees it: class contract, registry, schema, `dvc doctor`.

dev.py runs this file with the newest DVC and again with the oldest that pyproject.toml allows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

import dropbox
import pytest

import dvc_dropbox
from dvc_dropbox import _register
from dvc_dropbox.adapter import DropboxFileSystem
from dvc_dropbox.errors import DropboxConfigError

from .cli import DVC, dvc, make_repo

SRC = str(Path(dvc_dropbox.__file__).parent.parent)
# What a process with DVC loaded prints about our registration: schema, registry, warnings.
PROBE = """
import importlib, json, sys, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    for name in sys.argv[1:]:
        importlib.import_module(name)
    from dvc.config import Config
    from dvc_objects.fs import known_implementations
    Config.validate({"remote": {"r": {"url": "dropbox://dvc/x", "chunk_size": "50331648"}}})
    try:
        Config.validate({"remote": {"r": {"url": "dropbox:/dvc/x"}}})
        refused = ""
    except Exception as exc:
        refused = str(exc)
print(json.dumps({
    "fs": known_implementations.get("dropbox", {}).get("class"),
    "refused": refused,
    "warnings": [str(w.message) for w in caught if "dvc-dropbox" in str(w.message)],
}))
"""


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
    assert validate({"url": "DropBox://dvc/x", "chunk_size": "50331648"})["chunk_size"]
    assert validate({"url": "dropbox://dvc/x", "path_root": "1234"})["path_root"] == "1234"
    with pytest.raises(Invalid, match="extra keys not allowed"):
        validate({"url": "dropbox://dvc/my-project", "bogus": "1"})
    with pytest.raises(Invalid, match="path_root must be 'home', 'root' or a namespace id"):
        validate({"url": "dropbox://dvc/x", "path_root": "team"})
    # Called directly, as `get_cloud_fs` does for a URL typed after `dvc ls-url`, a bad URL is
    # DVC's usual error, not a voluptuous one that DVC would report as a config file error.
    with pytest.raises(DropboxConfigError, match="did you mean dropbox://dvc/x"):
        validate({"url": "dropbox:/dvc/x"})
    assert validate({"url": "s3://bucket/path"})["url"] == "s3://bucket/path"  # DVC's own


@pytest.mark.parametrize(
    "first",
    [
        ["dvc.config_schema"],
        ["dvc.config"],
        ["dvc_objects.fs"],
        ["dvc.fs"],
        ["dvc.repo"],
        ["dvc.cli"],
        ["dvc.api"],
        ["dvc_data.index", "dvc.testing.fixtures"],
    ],
    ids=lambda names: "+".join(names),
)
def test_the_hook_registers_whatever_dvc_imports_first(first: list[str]) -> None:
    """Through the installed start-up hook only (no register() call), in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *first], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "could not register" not in out.stderr
    seen = json.loads(out.stdout)
    assert seen["fs"] == _register.FS_CLASS
    assert "invalid Dropbox URL 'dropbox:/dvc/x'" in seen["refused"]
    assert seen["warnings"] == []


def test_late_install_patches_a_schema_already_compiled() -> None:
    """`python -S` skips .pth files: DVC loads and compiles its schema before install()."""
    script = (
        "import sys; sys.path[:0] = sys.argv[1:];"
        "from dvc.config import Config;"
        "import dvc_dropbox;"  # the package itself imports nothing
        "Config.validate({'remote': {'r': {'url': 's3://b/p'}}});"
        "assert 'dvc_dropbox._register' not in sys.modules;"
        "import dvc_dropbox._startup as s; s.install();"
        "print(Config.validate({'remote': {'r': {'url': 'dropbox://dvc/x'}}})['remote']['r'])"
    )
    paths = [SRC, sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    out = subprocess.run(
        [sys.executable, "-S", "-c", script, *paths], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "'url': 'dropbox://dvc/x'" in out.stdout


def test_schema_layout_without_remote_schemas() -> None:
    """DVC before 3.64 has no REMOTE_SCHEMAS: ByUrl's mapping is a literal inside SCHEMA."""
    from dvc import config_schema as real
    from voluptuous import Invalid

    layout = ModuleType("dvc_3_46_config_schema")
    layout.REMOTE_COMMON = real.REMOTE_COMMON  # type: ignore[attr-defined]
    layout.SCHEMA = {  # type: ignore[attr-defined]
        "remote": {str: real.ByUrl({"": real.REMOTE_COMMON, "s3": {**real.REMOTE_COMMON}})}
    }
    _register.register_schema(layout)
    _register.register_schema(layout)  # idempotent: wrapped once
    validate = layout.SCHEMA["remote"][str]  # type: ignore[attr-defined]
    assert validate({"url": "dropbox://dvc/x", "chunk_size": "48"})["chunk_size"] == "48"
    assert validate({"url": "s3://bucket/x"})["url"] == "s3://bucket/x"
    assert validate({"url": "/some/local/dir"})["url"] == "/some/local/dir"
    with pytest.raises(Invalid, match="Unsupported URL type gs://"):
        validate({"url": "gs://bucket/x"})  # still DVC's validator for everything else
    with pytest.raises(DropboxConfigError, match="followed by two slashes"):
        validate({"url": "../dropbox:/dvc/x"})


def test_remote_add_and_modify(tmp_path: Path, cli_env: dict[str, str]) -> None:
    repo = make_repo(tmp_path / "repo", cli_env)
    procs = [
        dvc(repo, cli_env, "remote", "add", "-d", "myremote", "dropbox://dvc/my-project"),
        dvc(repo, cli_env, "remote", "modify", "myremote", "app_key", "abc123"),
        dvc(repo, cli_env, "remote", "modify", "--local", "myremote", "app_secret", "s3cr3t"),
        dvc(repo, cli_env, "remote", "modify", "myremote", "chunk_size", "50331648"),
        dvc(repo, cli_env, "remote", "modify", "myremote", "path_root", "home"),
        dvc(repo, cli_env, "remote", "list"),
    ]
    config = (repo / ".dvc" / "config").read_text()
    assert "url = dropbox://dvc/my-project" in config
    assert "app_key = abc123" in config
    assert "chunk_size = 50331648" in config
    assert "s3cr3t" in (repo / ".dvc" / "config.local").read_text()
    assert procs[-1].stdout.split()[:2] == ["myremote", "dropbox://dvc/my-project"]
    for proc in procs:  # DVC 3.46-3.63 printed "could not register" on every command
        assert "Warning" not in proc.stderr and "could not register" not in proc.stderr


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
