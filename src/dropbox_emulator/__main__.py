"""`python -m dropbox_emulator`: same as the `dropbox-emulator` console script."""

from __future__ import annotations

import sys

from dropbox_emulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
