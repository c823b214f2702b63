"""The embedded broker: kombu's filesystem transport, made safe for a worker beside a web server.

`make run` and the browser tests have no Redis: tasks go through files in a
folder (var/broker/), one file per message. Kombu's own transport has two
faults that show under load (celery/kombu#1551):

- it creates the message's file under its final name and then writes it, so
  a worker polling the folder can take the file while it is still empty;
- reading such a file raises JSONDecodeError out of the consumer, which
  Celery treats as unrecoverable: the worker exits, and the message, already
  deleted, is gone with it.

Here a message is written under a name the worker does not look at and then
renamed to its final name, which is atomic within one folder: a worker sees
a whole message or none. A file that still cannot be read (written by
something else, or damaged) is logged and kept beside the processed ones as
`<name>.unreadable`, and the worker goes on with the next.

Claiming a file is still kombu's rename into the processed folder (only one
worker's rename can succeed), but always into that folder, which
`filesystem_broker()` puts inside the broker's own: kombu's default, the
system's temporary folder, may be another filesystem, where a move is a copy
two workers can both make.
"""

import json
import logging
import os
import uuid
from pathlib import Path
from queue import Empty
from time import monotonic_ns
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

from config import private_files

logger = logging.getLogger(__name__)

# The broker URL's scheme that names this transport (registered by config/celery.py).
SCHEME = "embedded"

# What _get picks up: "<time>_<uuid>.<queue>.msg". A file being written
# starts with a dot, so the text after its first dot is never "<queue>.msg".
PARTIAL_PREFIX = ".partial-"
UNREADABLE_SUFFIX = ".unreadable"


class Channel(filesystem.Channel):
    # Kombu calls it with keyword arguments (its base class's annotation has none).
    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Write the message whole, then give it the name workers look for."""
        folder = Path(self.data_folder_out)
        # Kombu's naming, "<time>_<uuid>.<queue>.msg", with the time in
        # nanoseconds and padded (kombu's milliseconds leave a burst of
        # messages in random order): the folder sorts oldest first.
        name = f"{monotonic_ns():020d}_{uuid.uuid4()}.{queue}.msg"
        partial = folder / f"{PARTIAL_PREFIX}{name}"
        try:
            # A task's arguments may be a reader's address: 0600, in a 0700 folder.
            private_files.write_private(partial, str_to_bytes(dumps(message)))
            os.replace(partial, folder / name)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise ChannelError(f"Cannot add {name!r} to {folder}") from exc

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        """The oldest message of `queue`, claimed by moving it into the processed folder."""
        wanted = f"{queue}.msg"
        folder = Path(self.data_folder_in)
        processed = Path(self.processed_folder)
        for name in sorted(os.listdir(folder)):
            if name.partition(".")[2] != wanted:
                continue
            claimed = processed / name
            try:
                os.rename(folder / name, claimed)
            except OSError:
                continue  # another worker took it first
            try:
                payload = claimed.read_bytes()
            except OSError as exc:
                raise ChannelError(f"Cannot read {claimed} from the queue") from exc
            try:
                message = loads(bytes_to_str(payload))
            except (json.JSONDecodeError, UnicodeDecodeError):
                kept = claimed.with_name(name + UNREADABLE_SUFFIX)
                os.replace(claimed, kept)
                logger.error("Broker message %s is not readable JSON; kept as %s", name, kept)
                continue
            if not self.store_processed:
                claimed.unlink()
            return message
        raise Empty()


class Transport(filesystem.Transport):
    Channel = Channel
