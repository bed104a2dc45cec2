"""The ``tierline`` command: ``main`` (``streams.cli.main``) and a module per operator command."""

from streams.cli.main import main

__all__ = ["main"]
