"""`wire.json_encode` is stone's `json_encode` made cheaper: the same JSON for every shape the
emulator answers with (structs with unset/None/default fields, struct trees, unions with and
without values, lists, nullables, timestamps, bytes, booleans in integer fields) and the same
ValidationError for values that are off-contract."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from dropbox import common, files, sharing, users
from dropbox import stone_serializers as ss
from dropbox import stone_validators as bv

from dropbox_emulator.http import wire

WHEN = datetime.datetime(2026, 12, 2, 0, 8, 14)


def _file(i: int, **extra: Any) -> files.FileMetadata:
    return files.FileMetadata(
        name=f"{i:06d}.bin",
        id="id:" + "a" * 22,
        client_modified=WHEN,
        server_modified=WHEN,
        rev="00000012aabbccdd",
        size=16384 + i,
        path_lower=f"/b/s/{i:06d}.bin",
        path_display=f"/B/s/{i:06d}.bin",
        is_downloadable=True,
        content_hash="e3" * 32,
        **extra,
    )


CASES: list[tuple[Any, Any]] = [
    (files.FileMetadata_validator, _file(1)),
    (
        files.FileMetadata_validator,
        _file(2, has_explicit_shared_members=False, property_groups=[], preview_url="x"),
    ),
    (
        files.UploadSessionFinishBatchResult_validator,
        files.UploadSessionFinishBatchResult(
            entries=[
                files.UploadSessionFinishBatchResultEntry.success(_file(3)),
                files.UploadSessionFinishBatchResultEntry.failure(
                    files.UploadSessionFinishError.path(
                        files.WriteError.conflict(files.WriteConflictError.file)
                    )
                ),
                files.UploadSessionFinishBatchResultEntry.failure(
                    files.UploadSessionFinishError.lookup_failed(
                        files.UploadSessionLookupError.incorrect_offset(
                            files.UploadSessionOffsetError(correct_offset=7)
                        )
                    )
                ),
                files.UploadSessionFinishBatchResultEntry.failure(
                    files.UploadSessionFinishError.too_many_write_operations
                ),
            ]
        ),
    ),
    (
        files.ListFolderResult_validator,
        files.ListFolderResult(
            entries=[
                _file(4),
                files.FolderMetadata(name="s", id="id:b", path_lower="/b/s", path_display="/B/s"),
                files.DeletedMetadata(name="gone", path_lower="/b/gone", path_display="/b/gone"),
            ],
            cursor="c" * 40,
            has_more=True,
        ),
    ),
    (
        files.UploadSessionStartResult_validator,
        files.UploadSessionStartResult(session_id="pid_upload_session:abc"),
    ),
    (bv.Void(), None),
    (
        files.DeleteBatchJobStatus_validator,
        files.DeleteBatchJobStatus.complete(
            files.DeleteBatchResult(
                entries=[
                    files.DeleteBatchResultEntry.success(
                        files.DeleteBatchResultData(metadata=_file(5))
                    ),
                    files.DeleteBatchResultEntry.failure(
                        files.DeleteError.path_lookup(files.LookupError.not_found)
                    ),
                ]
            )
        ),
    ),
    (files.DeleteBatchJobStatus_validator, files.DeleteBatchJobStatus.in_progress),
    (
        users.FullAccount_validator,
        users.FullAccount(
            account_id="dbid:" + "x" * 35,
            name=users.Name("a", "b", "c", "d", "e"),
            email="a@example.com",
            email_verified=True,
            disabled=False,
            locale="en",
            referral_link="https://x",
            is_paired=False,
            account_type=users.users_common.AccountType.basic,
            root_info=common.UserRootInfo(root_namespace_id="1", home_namespace_id="2"),
        ),
    ),
    (
        sharing.SharedLinkMetadata_validator,
        sharing.FileLinkMetadata(
            url="https://x",
            name="n",
            link_permissions=sharing.LinkPermissions(can_revoke=True),
            client_modified=WHEN,
            server_modified=WHEN,
            rev="00000012aabbccdd",
            size=1,
        ),
    ),
    (bv.List(bv.UInt64()), [1, 2, True]),
    (bv.Nullable(bv.Bytes()), b"\x00\xff"),
    (bv.Nullable(bv.Bytes()), None),
]


def _outcome(encode: Any, validator: Any, value: Any) -> tuple[str, str]:
    try:
        return "json", encode(validator, value)
    except bv.ValidationError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_same_json_as_stone(case: int) -> None:
    validator, value = CASES[case]
    ours = _outcome(wire.json_encode, validator, value)
    assert ours == _outcome(ss.json_encode, validator, value)
    # Every case but the shared link (missing a required nested field) encodes.
    assert ours[0] == ("error" if isinstance(value, sharing.FileLinkMetadata) else "json")


def test_same_validation_error_as_stone() -> None:
    incomplete = files.FileMetadata(name="x")  # required fields unset
    bad_list = files.UploadSessionFinishBatchResult(entries=[])
    bad_list.entries.append("not an entry")  # type: ignore[arg-type]
    for validator, value in (
        (files.FileMetadata_validator, incomplete),
        (files.UploadSessionFinishBatchResult_validator, bad_list),
        (files.FileMetadata_validator, files.FolderMetadata(name="f")),
    ):
        with pytest.raises(bv.ValidationError) as ours:
            wire.json_encode(validator, value)
        with pytest.raises(bv.ValidationError) as theirs:
            ss.json_encode(validator, value)
        assert str(ours.value) == str(theirs.value)


def _batch(*commits: str) -> str:
    """A finish_batch_v2 argument with one entry per commit (JSON text)."""
    cursor = '{"session_id": "pid_upload_session:a", "offset": 16384}'
    entries = ", ".join(f'{{"cursor": {cursor}, "commit": {commit}}}' for commit in commits)
    return f'{{"entries": [{entries}]}}'


BATCH = files.UploadSessionFinishBatchArg_validator
DECODE_CASES: list[tuple[Any, str]] = [
    (BATCH, _batch('{"path": "/a"}')),
    (
        BATCH,
        _batch(
            '{"path": "/a", "mode": "overwrite", "autorename": false, "mute": true}',
            '{"path": "/b", "mode": {".tag": "update", "update": "0123456789"},'
            ' "client_modified": "2026-12-02T00:08:14Z", "strict_conflict": true}',
        ),
    ),
    (BATCH, _batch('{"path": 1}')),
    (BATCH, _batch('{"pat": "/a"}')),
    (BATCH, _batch('{"path": "/a", "mode": "sideways"}')),
    (BATCH, _batch('{"path": "/a", "client_modified": "yesterday"}')),
    (files.UploadSessionFinishBatchArg_validator, '{"entries": {}}'),
    (files.UploadSessionFinishBatchArg_validator, "[1, 2"),
    (files.UploadSessionStartArg_validator, '{"close": true, "session_type": "concurrent"}'),
    (files.UploadSessionStartArg_validator, '{"close": "yes"}'),
    (files.UploadSessionStartArg_validator, '{"session_type": {".tag": "sequential", "x": 1}}'),
    (files.UploadArg_validator, '{"path": "/a", "mode": {".tag": "add"}, "content_hash": "ab"}'),
    (files.ListFolderArg_validator, '{"path": "", "recursive": true, "limit": 2000}'),
    (files.ListFolderArg_validator, '{"path": "", "limit": 0}'),
    (files.ListFolderContinueArg_validator, '{"cursor": "c"}'),
    (files.DeleteBatchArg_validator, '{"entries": [{"path": "/a", "parent_rev": "0123456789"}]}'),
    (
        files.GetMetadataArg_validator,
        '{"path": "/a", "include_property_groups": {".tag": "filter_some", "filter_some": ["x"]}}',
    ),
    (common.PathRoot_validator, '{".tag": "root", "root": "123"}'),
    (bv.Void(), "null"),
    (bv.Void(), "1"),
    (bv.String(), '"x"'),
]


def _decoded(decode: Any, validator: Any, text: str) -> tuple[str, str]:
    try:
        return "value", repr(decode(validator, text))
    except bv.ValidationError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("case", range(len(DECODE_CASES)))
def test_same_decoding_as_stone(case: int) -> None:
    validator, text = DECODE_CASES[case]
    ours = _decoded(wire.json_decode, validator, text)
    assert ours == _decoded(lambda v, t: ss.json_decode(v, t, strict=True), validator, text)
