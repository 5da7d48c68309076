"""Errors the plugin raises on purpose: each says what happened and what to do."""

from __future__ import annotations

from dvc.exceptions import DvcException


class TransferFatal:
    """Mixed into errors whose cause fails every file of a transfer alike (no space, rejected
    credentials, a remote folder that cannot be written): a transfer stops at the first one and
    says it once (`transfer.fatal`) instead of once per file."""


class DropboxRemoteError(DvcException):
    """Base of every error dvc-dropbox raises deliberately: DVC prints the message, no traceback."""


class DropboxConfigError(DropboxRemoteError, ValueError):
    """A remote URL or option is wrong."""


class DropboxAuthError(DropboxRemoteError, PermissionError, TransferFatal):
    """Credentials are missing, expired, revoked or insufficient."""


class DropboxIntegrityError(DropboxRemoteError, OSError):
    """Downloaded bytes do not match Dropbox's content_hash."""


class DropboxFullError(DropboxRemoteError, TransferFatal):
    """The Dropbox account (or the team's space limit for this member) has no room left."""


class DropboxRemotePathError(DropboxConfigError, TransferFatal):
    """Dropbox refuses the remote's folder as a place to write (a name it does not allow)."""


class DropboxWriteDenied(PermissionError, TransferFatal):
    """This account may not write where the remote points (a folder shared read-only).

    An OSError (errno EACCES, the path) as fsspec expects of a refused write."""


class DropboxTransferStopped(DropboxRemoteError):
    """A transfer ended at its first error that every other file would have met too."""


class DropboxNetworkSetupError(DropboxRemoteError, TransferFatal):
    """The TLS certificate cannot be verified, or the proxy cannot be used: waiting cannot help.

    Transfer-fatal: every other request meets the same certificate or proxy."""
