"""DVC's own conformance suite (dvc.testing), wired to the emulator (dvc-integration.md §4)."""

from __future__ import annotations

from dvc.testing.fixtures import *

# The plugin tests' credentials and SDK fixtures (and their explicit `register()`).
from tests.integration.plugin.conftest import *

from .fixtures import *
