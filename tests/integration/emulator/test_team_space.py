"""Team spaces as Dropbox lays them out, through the official SDK and `with_path_root`.

The account is a team member: the team space root namespace contains the member's home folder
at `root_info.home_path` and a team folder next to it. One emulator of its own (clean state),
so listings of the team root can be asserted exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dropbox import common, files
from dropbox.exceptions import ApiError, PathRootError

from tests.helpers.emulator import EmulatorProcess, sdk_client

TEAM_FOLDER = "/Team Folder"


@pytest.fixture(scope="module")
def team_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(data_dir=tmp_path_factory.mktemp("team-space")) as emu:
        yield emu


@pytest.fixture
def clean(team_emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch) -> EmulatorProcess:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", team_emulator.ca_bundle)
    team_emulator.reset()
    return team_emulator


@pytest.fixture
def home(clean: EmulatorProcess) -> Any:
    return sdk_client(clean)


@pytest.fixture
def root_info(home: Any) -> common.TeamRootInfo:
    info = home.users_get_current_account().root_info
    assert isinstance(info, common.TeamRootInfo)
    return info


@pytest.fixture
def root(home: Any, root_info: common.TeamRootInfo) -> Any:
    return rooted(home, common.PathRoot.root(root_info.root_namespace_id))


def rooted(dbx: Any, path_root: common.PathRoot) -> Any:
    """`dbx.with_path_root(path_root)`, still pointed at this module's emulator (the SDK's
    clone takes the hosts it froze at import, the session emulator's)."""
    clone = dbx.with_path_root(path_root)
    clone._host_map = dict(dbx._host_map)
    return clone


def _names(result: files.ListFolderResult) -> list[tuple[str, str]]:
    return [(type(e).__name__, e.path_display) for e in result.entries]


def test_root_info_names_a_team_root_containing_home(root_info: common.TeamRootInfo) -> None:
    assert root_info.root_namespace_id != root_info.home_namespace_id
    assert root_info.home_path == "/Emulator User"


def test_team_root_lists_home_folder_and_team_folder(
    root: Any, root_info: common.TeamRootInfo
) -> None:
    listed = root.files_list_folder("")
    assert sorted(_names(listed)) == [
        ("FolderMetadata", root_info.home_path),
        ("FolderMetadata", TEAM_FOLDER),
    ]
    mount = root.files_get_metadata(root_info.home_path)
    assert isinstance(mount, files.FolderMetadata)
    assert (mount.name, mount.path_lower) == ("Emulator User", root_info.home_path.lower())


def test_home_sees_its_folder_as_root(home: Any, root: Any) -> None:
    assert home.files_list_folder("").entries == []
    with pytest.raises(ApiError) as excinfo:
        home.files_get_metadata(TEAM_FOLDER)
    assert excinfo.value.error.get_path().is_not_found()
    # No header and an explicit `home` path root are the same view.
    explicit = rooted(home, common.PathRoot.home)
    root.files_upload(b"t", f"{TEAM_FOLDER}/only-in-team.txt")
    assert explicit.files_list_folder("").entries == []


def test_written_through_home_read_through_root(
    home: Any, root: Any, root_info: common.TeamRootInfo
) -> None:
    written = home.files_upload(b"from home", "/Data/a.txt")
    assert written.path_display == "/Data/a.txt"
    through_root = f"{root_info.home_path}/Data/a.txt"
    meta, resp = root.files_download(through_root)
    assert resp.content == b"from home"
    assert (meta.path_display, meta.path_lower) == (through_root, through_root.lower())
    assert meta.id == written.id and meta.rev == written.rev
    # The mount point's own casing, whatever casing the caller wrote.
    seen = root.files_get_metadata(f"{root_info.home_path.upper()}/data/A.TXT")
    assert seen.path_display == through_root


def test_written_through_root_read_through_home(
    home: Any, root: Any, root_info: common.TeamRootInfo
) -> None:
    target = f"{root_info.home_path}/up/b.bin"
    written = root.files_upload(b"\x00\x01 from root", target)
    assert (written.path_display, written.path_lower) == (target, target.lower())
    meta, resp = home.files_download("/up/b.bin")
    assert resp.content == b"\x00\x01 from root"
    assert meta.path_display == "/up/b.bin"
    by_home_ns = rooted(home, common.PathRoot.namespace_id(root_info.home_namespace_id))
    assert by_home_ns.files_get_metadata("/up/b.bin").path_display == "/up/b.bin"
    by_root_ns = rooted(home, common.PathRoot.namespace_id(root_info.root_namespace_id))
    assert by_root_ns.files_get_metadata(target).path_display == target


def test_upload_session_through_root_lands_in_home(
    home: Any, root: Any, root_info: common.TeamRootInfo
) -> None:
    start = root.files_upload_session_start(b"abc", close=True)
    cursor = files.UploadSessionCursor(session_id=start.session_id, offset=3)
    commit = files.CommitInfo(path=f"{root_info.home_path}/s/c.txt")
    done = root.files_upload_session_finish_batch_v2(
        [files.UploadSessionFinishArg(cursor=cursor, commit=commit)]
    )
    assert done.entries[0].get_success().path_display == f"{root_info.home_path}/s/c.txt"
    assert home.files_download("/s/c.txt")[1].content == b"abc"


def test_recursive_listing_from_root_walks_the_whole_layout(
    home: Any, root: Any, root_info: common.TeamRootInfo
) -> None:
    home.files_upload(b"1", "/d/one.txt")
    root.files_upload(b"2", f"{TEAM_FOLDER}/two.txt")
    root.files_upload(b"3", "/top.txt")
    hp = root_info.home_path
    walked: list[tuple[str, str]] = []
    page = root.files_list_folder("", recursive=True, limit=2)  # several pages
    walked += _names(page)
    for _ in range(20):
        if not page.has_more:
            break
        page = root.files_list_folder_continue(page.cursor)
        walked += _names(page)
    assert walked == [
        ("FolderMetadata", hp),
        ("FolderMetadata", f"{hp}/d"),
        ("FileMetadata", f"{hp}/d/one.txt"),
        ("FolderMetadata", TEAM_FOLDER),
        ("FileMetadata", f"{TEAM_FOLDER}/two.txt"),
        ("FileMetadata", "/top.txt"),
    ]
    # The home listing of the same data stays relative to home.
    assert _names(home.files_list_folder("", recursive=True)) == [
        ("FolderMetadata", "/d"),
        ("FileMetadata", "/d/one.txt"),
    ]
    # A change made through home shows up in the root's change feed under home_path.
    home.files_upload(b"4", "/d/later.txt")
    changes = root.files_list_folder_continue(page.cursor)
    assert _names(changes) == [("FileMetadata", f"{hp}/d/later.txt")]


def test_listing_a_folder_inside_home_through_root(
    home: Any, root: Any, root_info: common.TeamRootInfo
) -> None:
    home.files_upload(b"x", "/d/x.txt")
    hp = root_info.home_path
    assert _names(root.files_list_folder(hp)) == [("FolderMetadata", f"{hp}/d")]
    assert _names(root.files_list_folder(f"{hp}/d")) == [("FileMetadata", f"{hp}/d/x.txt")]


def test_move_from_team_folder_into_home(
    home: Any, root: Any, root_info: common.TeamRootInfo
) -> None:
    root.files_upload(b"shared", f"{TEAM_FOLDER}/t.txt")
    moved = root.files_move_v2(f"{TEAM_FOLDER}/t.txt", f"{root_info.home_path}/t.txt").metadata
    assert moved.path_display == f"{root_info.home_path}/t.txt"
    assert home.files_download("/t.txt")[1].content == b"shared"
    with pytest.raises(ApiError):
        root.files_get_metadata(f"{TEAM_FOLDER}/t.txt")
    deleted = root.files_delete_v2(f"{root_info.home_path}/t.txt").metadata
    assert deleted.path_display == f"{root_info.home_path}/t.txt"
    with pytest.raises(ApiError):
        home.files_get_metadata("/t.txt")


def test_mount_points_cannot_be_overwritten(
    home: Any, root: Any, root_info: common.TeamRootInfo
) -> None:
    home.files_upload(b"keep", "/keep.txt")
    with pytest.raises(ApiError):
        root.files_upload(b"x", root_info.home_path)
    with pytest.raises(ApiError):
        root.files_delete_v2(root_info.home_path)
    assert home.files_download("/keep.txt")[1].content == b"keep"
    assert len(root.files_list_folder("").entries) == 2


def test_wrong_namespace_ids_are_path_root_errors(
    home: Any, root_info: common.TeamRootInfo
) -> None:
    with pytest.raises(PathRootError) as excinfo:
        rooted(home, common.PathRoot.root("999999")).files_list_folder("")
    latest = excinfo.value.error.get_invalid_root()  # the account's current root info
    assert isinstance(latest, common.TeamRootInfo)
    assert latest.root_namespace_id == root_info.root_namespace_id
    # `root` must name the root namespace itself, not the home namespace.
    with pytest.raises(PathRootError) as excinfo:
        rooted(home, common.PathRoot.root(root_info.home_namespace_id)).files_list_folder("")
    assert excinfo.value.error.is_invalid_root()
    with pytest.raises(PathRootError) as excinfo:
        rooted(home, common.PathRoot.namespace_id("999999")).files_list_folder("")
    assert excinfo.value.error.is_no_permission()


def test_reset_keeps_the_layout(clean: EmulatorProcess) -> None:
    dbx = sdk_client(clean)
    info = dbx.users_get_current_account().root_info
    team = rooted(dbx, common.PathRoot.root(info.root_namespace_id))
    team.files_upload(b"x", "/gone.txt")
    clean.reset()
    assert sorted(e.path_display for e in team.files_list_folder("").entries) == [
        info.home_path,
        TEAM_FOLDER,
    ]
