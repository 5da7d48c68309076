"""Errors the plugin raises on purpose: each says what happened and what to do."""

from __future__ import annotations

from dvc.exceptions import DvcException


class DropboxRemoteError(DvcException):
    """Base of every error dvc-dropbox raises deliberately: DVC prints the message, no traceback."""


class DropboxConfigError(DropboxRemoteError, ValueError):
    """A remote URL or option is wrong."""


class DropboxAuthError(DropboxRemoteError, PermissionError):
    """Credentials are missing, expired, revoked or insufficient."""


class DropboxIntegrityError(DropboxRemoteError, OSError):
    """Downloaded bytes do not match Dropbox's content_hash."""
