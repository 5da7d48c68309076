"""The emulator's Dropbox state: the account, its namespaces, the tree of files and folders with
their revisions, upload sessions, listing cursors, async jobs and the blobs holding file contents.

Knows nothing of HTTP or routes: handlers turn calls into operations on `store.Store`.
"""
