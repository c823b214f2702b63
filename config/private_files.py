"""Local state that only the user the service runs as may read: folders 0700, files 0600.

var/ holds the demo's SQLite database (sessions included), the outbox (every
email, with its personal links), the embedded broker's queued tasks
(readers' addresses) and the file caches. The modes are set where each is
made, whatever the process's umask; bin/run-demo also starts the demo's
processes with umask 077, for anything else they write there.
"""

import os
import stat
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path) -> Path:
    """`path`, made with any missing parents if need be, enterable by its owner only.

    An existing one is tightened too: a checkout of before this rule has
    var/ at 0755.
    """
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=FOLDER_MODE, exist_ok=True)
        _tighten(folder, FOLDER_MODE)
    _tighten(path, FOLDER_MODE)
    return path


def write_private(path: Path, data: bytes) -> None:
    """A new file at `path` holding `data`, readable by its owner only from the start."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def private_sqlite_database(name: str) -> None:
    """The SQLite database file `name`, made empty if missing, readable by its owner only.

    Made before SQLite opens it, which would make it 0644; SQLite gives its
    -wal, -shm and -journal files the database's own mode. An empty file is
    an empty database to SQLite.
    """
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    if not path.parent.is_dir():
        return  # SQLite will say so when it is opened
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    for companion in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        if companion.exists():
            _tighten(companion, FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    # Another user's file is not this process's to change (nor could it).
    status = path.stat()
    if status.st_uid == os.geteuid() and stat.S_IMODE(status.st_mode) != mode:
        path.chmod(mode)
