"""The environment of every process the control plane starts: one allow-list.

The control plane wipes its own /proc/<pid>/environ (emulator/execution/process_hardening.py)
because a handler can read the /proc entries of its ancestors and their children; a child
started with the whole environment would show the user's secrets there again (AWS keys,
tokens, anything the shell exported). So each child (the fork server, the moto backend,
the poller process) gets only what running Python needs, plus what that child names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# Enough to find and run the interpreter and its packages: the search path, the locale, the
# time zone, temporary files, TLS roots, the active virtualenv, and the PYENV_* variables
# that keep a pyenv shim (python3.X on PATH) choosing the same interpreter as the user's shell.
INHERITED = frozenset({
    "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "PYTHONPATH", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "VIRTUAL_ENV", "PYENV_ROOT", "PYENV_VERSION",
})


def child_environment(environ: Mapping[str, str], *, also: Iterable[str] = (), prefixes: tuple[str, ...] = (),
                      settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """A child's whole environment: the allow-listed variables of `environ`, the names in
    `also` and those starting with one of `prefixes`, then `settings` on top."""
    keep = INHERITED | frozenset(also)
    env = {key: value for key, value in environ.items() if key in keep or (prefixes and key.startswith(prefixes))}
    env.update(settings or {})
    return env
