"""`dvc push` honours HTTPS_PROXY / NO_PROXY from the environment (the SDK session keeps requests'
environment settings per host instead of reading them per request: http_session)."""

from __future__ import annotations

import os
from pathlib import Path

from dropbox_emulator.connect_proxy import ConnectProxy
from tests.helpers.emulator import EmulatorProcess
from tests.integration.plugin.cli import dvc, make_repo, md5_object, remote_objects


def test_push_goes_through_the_proxy_unless_no_proxy(
    tmp_path: Path, emulator: EmulatorProcess, dropbox_sdk: object
) -> None:
    token = emulator.token()
    env = emulator.isolated_env(tmp_path / "home", token)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        env.pop(name, None)
    host = env["DROPBOX_API_CONTENT_HOST"]
    port = int(host.rsplit(":", 1)[1])
    repo = make_repo(tmp_path / "repo", env)
    folder = f"/proxied-{os.urandom(4).hex()}"
    dvc(repo, env, "remote", "add", "-d", "r", f"dropbox:/{folder}")
    contents = [os.urandom(1000 + i) for i in range(6)]
    for i, content in enumerate(contents[:3]):
        (repo / f"a{i}.bin").write_bytes(content)
        dvc(repo, env, "add", "-q", f"a{i}.bin")

    with ConnectProxy(port, lifetime_s=120) as proxy:
        dvc(repo, {**env, "HTTPS_PROXY": proxy.url}, "push", "-q")
        through_proxy = sum(proxy.hosts.values())
        # Every host the SDK talks to here is the emulator (api and content hosts are one
        # address in these tests): each connection was a tunnel. Three small files go up in one
        # pack, so one kept-alive connection may carry the whole push.
        assert through_proxy >= 1, proxy.hosts
        assert set(proxy.hosts) <= {host, env["DROPBOX_API_HOST"]}, proxy.hosts

        for i, content in enumerate(contents[3:]):
            (repo / f"b{i}.bin").write_bytes(content)
            dvc(repo, env, "add", "-q", f"b{i}.bin")
        bypass = {"HTTPS_PROXY": proxy.url, "NO_PROXY": "127.0.0.1"}
        dvc(repo, {**env, **bypass}, "push", "-q")
        assert sum(proxy.hosts.values()) == through_proxy, proxy.hosts

    assert remote_objects(dropbox_sdk, folder) == {md5_object(c) for c in contents}
