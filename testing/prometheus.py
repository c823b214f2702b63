"""promtool, for the tests of the alert rules and the dashboard's queries (deploy/).

Debian's `prometheus` package (which carries promtool), installed when
missing, as testing.proxy installs Caddy.
"""

import os
import shutil
import subprocess


class PromtoolUnavailable(Exception):
    """promtool is not installed and could not be."""


def ensure_promtool() -> str:
    """The path of a promtool binary, installing Debian's prometheus package when there is none."""
    promtool = shutil.which("promtool")
    if promtool is not None:
        return promtool
    if shutil.which("apt-get") is None:
        raise PromtoolUnavailable("promtool is not installed and there is no apt-get to install it")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"],
    ):
        result = subprocess.run(  # noqa: S603 - apt-get with fixed arguments
            command, env=environment, capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            failed = " ".join(command)
            raise PromtoolUnavailable(
                f"promtool is not installed and `{failed}` failed: {result.stderr[-500:]}"
            )
    promtool = shutil.which("promtool")
    if promtool is None:
        raise PromtoolUnavailable("apt-get installed prometheus, but promtool is not on PATH")
    return promtool
