"""fsspec's abstract suite (what s3fs, gcsfs and adlfs run) against `DropboxFS` on the emulator.

137 tests of copy, get, put, open and pipe semantics, on the session emulator (about 20 s).
"""

from __future__ import annotations

import fsspec.tests.abstract as abstract

from .fsspec_fixtures import DropboxFixtures


class TestDropboxCopy(abstract.AbstractCopyTests, DropboxFixtures):
    pass


class TestDropboxGet(abstract.AbstractGetTests, DropboxFixtures):
    pass


class TestDropboxPut(abstract.AbstractPutTests, DropboxFixtures):
    pass


class TestDropboxOpen(abstract.AbstractOpenTests, DropboxFixtures):
    pass


class TestDropboxPipe(abstract.AbstractPipeTests, DropboxFixtures):
    pass
