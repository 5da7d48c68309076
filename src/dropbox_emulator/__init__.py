"""A local Dropbox API v2 server that the unmodified official `dropbox` SDK talks to.

Point the SDK at it with the env it prints (`DROPBOX_API_HOST`, `DROPBOX_API_CONTENT_HOST`,
`DROPBOX_API_NOTIFY_HOST`, `DROPBOX_WEB_HOST`, `REQUESTS_CA_BUNDLE`; `DROPBOX_EMULATOR_CONTROL_URL`
for tests). Rooms, top down: `cli`/`runtime` (composition root), `http` (transport), `control` and
`oauth`, `handlers` (route semantics), `state`. Never imports the plugin.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
