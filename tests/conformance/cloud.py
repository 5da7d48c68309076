"""`Dropbox`: dvc.testing's view of a remote folder, inspected and changed through the SDK.

Deliberately independent of the plugin: the conformance suite checks the plugin's results
against what the official SDK sees.
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional

from dvc.testing.cloud import Cloud
from dvc.testing.path_info import CloudURLInfo


class Dropbox(Cloud, CloudURLInfo):
    client: ClassVar[Any] = None  # the SDK client for the session emulator (set by a fixture)
    app_key: ClassVar[Optional[str]] = None

    @property
    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"url": self.url}
        if self.app_key:
            config["app_key"] = self.app_key
        return config

    @property
    def fs_path(self) -> str:
        """The path as the plugin names it: the URL without scheme and outer slashes."""
        return (self.bucket + "/" + self.path.lstrip("/")).rstrip("/")

    @property
    def api_path(self) -> str:
        return "/" + self.fs_path

    def _metadata(self) -> Any:
        from dropbox import exceptions

        try:
            return self.client.files_get_metadata(self.api_path)
        except exceptions.ApiError as exc:
            if exc.error.is_path() and exc.error.get_path().is_not_found():
                return None
            raise

    def is_file(self) -> bool:
        from dropbox import files

        return isinstance(self._metadata(), files.FileMetadata)

    def is_dir(self) -> bool:
        from dropbox import files

        return isinstance(self._metadata(), files.FolderMetadata)

    def exists(self) -> bool:
        return self._metadata() is not None

    def mkdir(self, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        from dropbox import exceptions

        try:
            self.client.files_create_folder_v2(self.api_path)
        except exceptions.ApiError:
            if not (exist_ok and self.is_dir()):
                raise

    def write_bytes(self, contents: bytes) -> None:
        from dropbox import files

        self.client.files_upload(contents, self.api_path, mode=files.WriteMode.overwrite)

    def read_bytes(self) -> bytes:
        _, response = self.client.files_download(self.api_path)
        try:
            return response.content
        finally:
            response.close()

    def unlink(self, missing_ok: bool = False) -> None:
        if missing_ok and not self.exists():
            return
        self.client.files_delete_v2(self.api_path)

    def rmdir(self, recursive: bool = True) -> None:
        if not recursive and self.client.files_list_folder(self.api_path).entries:
            raise OSError(f"{self.api_path} is not empty")
        self.client.files_delete_v2(self.api_path)
