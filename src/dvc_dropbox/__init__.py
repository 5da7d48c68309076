"""Dropbox remote storage for DVC.

Kept import-light on purpose: the start-up hook imports this package in every Python process,
so nothing here may import dvc, dvc_objects, fsspec or dropbox.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
