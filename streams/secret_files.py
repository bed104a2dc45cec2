"""Secrets read from files, as container platforms hand them over.

``NAME_FILE=/run/secrets/x`` sets ``NAME`` to that file's content (its final newline dropped), for
compose secrets and Kubernetes Secrets mounted as files, where an environment variable would show
in ``docker inspect`` and in ``/proc``. It applies to every ``TIERLINE_*`` setting, the providers' SDK
variables, and any ``*_API_KEY`` (a declared lane's ``api_key_env``), never to a ``*_FILE`` setting of
tierline's own (``TIERLINE_PROVIDERS_FILE`` names a file to read, not a secret).
"""

from __future__ import annotations

from collections.abc import Collection, MutableMapping
from pathlib import Path

from streams.settings import SettingsError

__all__ = ["read_secret_files"]

SUFFIX = "_FILE"


def read_secret_files(environ: MutableMapping[str, str], known: Collection[str]) -> list[str]:
    """Set each ``NAME`` from its ``NAME_FILE``; the names set, in order.

    ``known``: the names that may be read so (settings, SDK variables); any ``*_API_KEY`` may too.
    An empty file leaves ``NAME`` unset, so that one compose file can mount a file per provider and
    leave the unused ones empty. Refused with a :class:`SettingsError` that says what to fix: a file
    that cannot be read, and ``NAME`` set both ways.
    """
    done = []
    for key in sorted(environ):
        name = key.removesuffix(SUFFIX)
        path = environ[key]
        if name == key or not path or key in known or not (name in known or name.endswith("_API_KEY")):
            continue
        if environ.get(name):
            raise SettingsError(f"{name} and {key} are both set: keep one of them")
        try:
            value = Path(path).read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{key}={path}: the file cannot be read ({exc})") from None
        if value:
            environ[name] = value
            done.append(name)
    return done
