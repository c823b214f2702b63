"""Caddy for the tests of the proxy in front of gunicorn (deploy/Caddyfile).

Debian's `caddy` package, installed when missing (as testing.mail_server
installs Dovecot). Debian 12 ships Caddy 2.6.2, compose runs the current
`caddy:2` image: the one directive whose name changed between them is
translated on the test's copy of the Caddyfile (`caddyfile_for`).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CADDYFILE = ROOT / "deploy" / "Caddyfile"
# Caddy 2.6.4 renamed `buffer_requests` + `max_buffer_size` to `request_buffers <size>`
# (the same handler option); 2.10 dropped the old names.
REQUEST_BUFFERS_SINCE = (2, 6, 4)


class CaddyUnavailable(Exception):
    """Caddy is not installed and could not be."""


def ensure_caddy() -> str:
    """The path of a caddy binary, installing Debian's package when there is none."""
    caddy = shutil.which("caddy")
    if caddy is not None:
        return caddy
    if shutil.which("apt-get") is None:
        raise CaddyUnavailable("caddy is not installed and there is no apt-get to install it")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "caddy"]):
        result = subprocess.run(  # noqa: S603 - apt-get with fixed arguments
            command, env=environment, capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            raise CaddyUnavailable(
                f"caddy is not installed and `{' '.join(command)}` failed: {result.stderr[-500:]}"
            )
    caddy = shutil.which("caddy")
    if caddy is None:
        raise CaddyUnavailable("apt-get installed caddy, but it is not on PATH")
    return caddy


def caddy_version(caddy: str) -> tuple[int, int, int]:
    """`caddy version` as numbers: "2.6.2" (Debian) or "v2.10.0 h1:…" (upstream builds)."""
    output = subprocess.run(  # noqa: S603 - the caddy binary, fixed arguments
        [caddy, "version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", output)
    if match is None:
        raise CaddyUnavailable(f"cannot read caddy's version from {output!r}")
    major, minor, patch = (int(number) for number in match.groups())
    return major, minor, patch


def caddyfile_for(caddy: str, text: str) -> str:
    """The Caddyfile `text` as this caddy reads it (older ones name request_buffers otherwise)."""
    if caddy_version(caddy) >= REQUEST_BUFFERS_SINCE:
        return text
    return re.sub(
        r"^(\s*)request_buffers (\S+)$",
        r"\1buffer_requests\n\1max_buffer_size \2",
        text,
        flags=re.MULTILINE,
    )
