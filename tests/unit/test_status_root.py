"""`dvc-dropbox status`'s root lines: where `path_root root` and `home` point (pure logic)."""

from __future__ import annotations

from dropbox import common, users

from dvc_dropbox.cli import _root_lines


def account(root_info: common.RootInfo) -> users.FullAccount:
    return users.FullAccount(root_info=root_info)


def test_a_team_member_sees_the_team_root_and_the_home_path() -> None:
    info = common.TeamRootInfo(
        root_namespace_id="30", home_namespace_id="31", home_path="/Ann Smith"
    )
    assert _root_lines(account(info)) == [
        "Root:         namespace 30 (team space; path_root root)",
        "Home:         /Ann Smith in the team space (namespace 31; path_root home)",
    ]


def test_an_account_without_a_team_space_has_one_root() -> None:
    info = common.UserRootInfo(root_namespace_id="7", home_namespace_id="7")
    assert _root_lines(account(info)) == [
        "Root:         namespace 7 (your own Dropbox; home and root are the same)"
    ]


def test_no_root_info_prints_nothing() -> None:
    assert _root_lines(object()) == []
