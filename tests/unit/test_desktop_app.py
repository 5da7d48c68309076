"""Pure logic of `desktop_app`: where info.json lives, what it says, where a remote's folder is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dropbox import common, users, users_common

from dvc_dropbox import desktop_app
from dvc_dropbox.desktop_app import AccountInfo, DesktopApp, LinkedAccount

PERSONAL = AccountInfo(is_team=False, root_namespace_id="11", home_namespace_id="11")
TEAM_SPACE = AccountInfo(
    is_team=True, root_namespace_id="20", home_namespace_id="21", home_path="/Jane Doe"
)
TEAM_NO_SPACE = AccountInfo(is_team=True, root_namespace_id="30", home_namespace_id="30")


def _write_info(folder: Path, **accounts: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    info = folder / "info.json"
    info.write_text(json.dumps(accounts))
    return info


def _entry(path: Path, team: bool) -> dict[str, object]:
    return {
        "path": str(path),
        "host": 123456789,
        "is_team": team,
        "subscription_type": "Business" if team else "Plus",
    }


def test_locations_per_platform(tmp_path: Path) -> None:
    home = {"HOME": str(tmp_path)}
    for platform in ("linux", "darwin"):
        assert desktop_app.info_json_locations(platform, home) == [
            tmp_path / ".dropbox" / "info.json"
        ]
    env = {"APPDATA": str(tmp_path / "Roaming"), "LOCALAPPDATA": str(tmp_path / "Local")}
    assert desktop_app.info_json_locations("win32", env) == [
        tmp_path / "Roaming" / "Dropbox" / "info.json",
        tmp_path / "Local" / "Dropbox" / "info.json",
    ]
    assert desktop_app.info_json_locations("win32", {"LOCALAPPDATA": str(tmp_path)}) == [
        tmp_path / "Dropbox" / "info.json"
    ]
    assert desktop_app.info_json_locations("win32", {}) == []


def test_windows_prefers_appdata_then_localappdata(tmp_path: Path) -> None:
    env = {"APPDATA": str(tmp_path / "Roaming"), "LOCALAPPDATA": str(tmp_path / "Local")}
    assert desktop_app.find_desktop_app("win32", env) is None
    local = _write_info(
        tmp_path / "Local" / "Dropbox", personal=_entry(tmp_path / "Local-Dropbox", False)
    )
    found = desktop_app.find_desktop_app("win32", env)
    assert found is not None and found.info_file == local
    roaming = _write_info(
        tmp_path / "Roaming" / "Dropbox", business=_entry(tmp_path / "Work", True)
    )
    found = desktop_app.find_desktop_app("win32", env)
    assert found is not None and found.info_file == roaming
    assert [acc.kind for acc in found.accounts] == ["business"]


def test_the_documented_format(tmp_path: Path) -> None:
    _write_info(
        tmp_path / ".dropbox",
        personal=_entry(tmp_path / "Dropbox (Personal)", False),
        business=_entry(tmp_path / "Dropbox (Acme)", True),
    )
    found = desktop_app.find_desktop_app("linux", {"HOME": str(tmp_path)})
    assert found is not None and found.problem is None
    assert found.accounts == [
        LinkedAccount("personal", tmp_path / "Dropbox (Personal)", False, 123456789, "Plus"),
        LinkedAccount("business", tmp_path / "Dropbox (Acme)", True, 123456789, "Business"),
    ]
    # Older files without is_team: the entry's name tells.
    older = desktop_app.parse_info(
        json.dumps({"business": {"path": "/b"}, "personal": {"path": "/p"}})
    )
    assert [(acc.kind, acc.is_team) for acc in older] == [("personal", False), ("business", True)]


@pytest.mark.parametrize(
    "content", ["", "[]", "{}", '{"personal": {"host": 1}}', '{"personal": {"path": ""}}']
)
def test_a_damaged_info_json_is_a_problem_not_a_crash(tmp_path: Path, content: str) -> None:
    (tmp_path / ".dropbox").mkdir()
    (tmp_path / ".dropbox" / "info.json").write_text(content)
    found = desktop_app.find_desktop_app("linux", {"HOME": str(tmp_path)})
    assert found is not None and found.accounts == []
    assert found.problem and found.problem.startswith("not the documented format")


def _app(tmp_path: Path) -> DesktopApp:
    return DesktopApp(
        tmp_path / "info.json",
        [
            LinkedAccount("personal", tmp_path / "Dropbox", False),
            LinkedAccount("business", tmp_path / "Dropbox (Acme)", True),
        ],
    )


def _folders(candidates: list[desktop_app.Candidate]) -> list[tuple[Path, str, bool]]:
    return [(c.folder, c.sync_path, c.certain) for c in candidates]


def test_home_folder_of_each_kind_of_account(tmp_path: Path) -> None:
    app = _app(tmp_path)
    found, notes = desktop_app.synced_folder_candidates(app, "dvc/x", PERSONAL)
    assert _folders(found) == [(tmp_path / "Dropbox" / "dvc" / "x", "dvc/x", True)] and not notes
    # A team space: the desktop app's folder is the team root; the home is the member folder.
    found, notes = desktop_app.synced_folder_candidates(app, "dvc/x", TEAM_SPACE, "home")
    assert _folders(found) == [
        (tmp_path / "Dropbox (Acme)" / "Jane Doe" / "dvc" / "x", "Jane Doe/dvc/x", True)
    ]
    # path_root = the root namespace: relative to the team root itself.
    found, notes = desktop_app.synced_folder_candidates(app, "dvc/x", TEAM_SPACE, "20")
    assert _folders(found) == [(tmp_path / "Dropbox (Acme)" / "dvc" / "x", "dvc/x", True)]
    # A team without a team space: the business folder is the home.
    found, notes = desktop_app.synced_folder_candidates(app, "dvc/x", TEAM_NO_SPACE)
    assert _folders(found) == [(tmp_path / "Dropbox (Acme)" / "dvc" / "x", "dvc/x", True)]


def test_unsure_cases_say_so(tmp_path: Path) -> None:
    app = _app(tmp_path)
    found, notes = desktop_app.synced_folder_candidates(app, "dvc/x", TEAM_SPACE, "99")
    assert found == [] and "path_root 99" in notes[0] and "yourself" in notes[0]
    # The account unknown: every Dropbox folder, and in a team's each of its folders (guesses).
    (tmp_path / "Dropbox (Acme)" / "Jane Doe").mkdir(parents=True)
    found, notes = desktop_app.synced_folder_candidates(app, "dvc/x", None)
    assert _folders(found) == [
        (tmp_path / "Dropbox" / "dvc" / "x", "dvc/x", False),
        (tmp_path / "Dropbox (Acme)" / "dvc" / "x", "dvc/x", False),
        (tmp_path / "Dropbox (Acme)" / "Jane Doe" / "dvc" / "x", "Jane Doe/dvc/x", False),
    ]
    assert [c.speculative for c in found] == [False, False, True]
    assert "could not be read" in notes[0]
    personal_only = DesktopApp(app.info_file, app.accounts[:1])
    found, notes = desktop_app.synced_folder_candidates(personal_only, "dvc/x", TEAM_SPACE)
    assert found == [] and "does not sync it" in notes[0]


def test_account_info_from_the_sdk_objects() -> None:
    def account(account_type: object, root_info: object) -> users.FullAccount:
        return users.FullAccount(
            account_id="dbid:" + "A" * 35,
            name=users.Name("J", "D", "J", "J D", "JD"),
            email="j@example.com",
            email_verified=True,
            disabled=False,
            country="US",
            locale="en",
            referral_link="https://example.com",
            is_paired=False,
            account_type=account_type,
            root_info=root_info,
        )

    team = AccountInfo.from_account(
        account(
            users_common.AccountType.business,
            common.TeamRootInfo(
                root_namespace_id="20", home_namespace_id="21", home_path="/Jane Doe"
            ),
        )
    )
    assert team == TEAM_SPACE and team.team_space
    personal = AccountInfo.from_account(
        account(
            users_common.AccountType.pro,
            common.UserRootInfo(root_namespace_id="11", home_namespace_id="11"),
        )
    )
    assert personal == PERSONAL and not personal.team_space


def test_existing_folder_ignores_letter_case(tmp_path: Path) -> None:
    (tmp_path / "Dropbox" / "DVC" / "My-Project").mkdir(parents=True)
    want = tmp_path / "Dropbox" / "DVC" / "My-Project"
    assert desktop_app.existing_folder(tmp_path / "Dropbox" / "dvc" / "my-project") == want
    assert desktop_app.existing_folder(tmp_path / "Dropbox" / "dvc" / "other") is None
    (tmp_path / "Dropbox" / "file").write_text("x")
    assert desktop_app.existing_folder(tmp_path / "Dropbox" / "file") is None


def test_containing_dropbox_folder_follows_symlinks(tmp_path: Path) -> None:
    app = _app(tmp_path)
    (tmp_path / "Dropbox (Acme)" / "Jane Doe" / "repo").mkdir(parents=True)
    (tmp_path / "Dropbox").mkdir()
    (tmp_path / "elsewhere").mkdir()
    inside = tmp_path / "Dropbox (Acme)" / "Jane Doe" / "repo"
    assert desktop_app.containing_dropbox_folder(app, inside) == app.accounts[1]
    assert desktop_app.containing_dropbox_folder(app, inside / "not-yet") == app.accounts[1]
    assert desktop_app.containing_dropbox_folder(app, tmp_path / "elsewhere") is None
    (tmp_path / "link").symlink_to(inside)
    assert desktop_app.containing_dropbox_folder(app, tmp_path / "link") == app.accounts[1]
    # A similar name is not the folder.
    (tmp_path / "Dropbox-old").mkdir()
    assert desktop_app.containing_dropbox_folder(app, tmp_path / "Dropbox-old") is None
