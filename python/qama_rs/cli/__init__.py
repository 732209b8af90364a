"""Command-line layer: ``qama`` (``qama_rs.cli.main``) and the end-to-end demo."""

from qama_rs.cli.main import main

__all__ = ["main"]
