#!/usr/bin/env python
import contextlib
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    from config.sentry import init_from_settings

    # runserver (the demo's web) and the commands report their errors too. A
    # setting that cannot be read is left to Django, which stops with its message.
    with contextlib.suppress(ImproperlyConfigured):
        init_from_settings()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
