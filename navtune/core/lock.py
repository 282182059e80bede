"""One writer per folder: an exclusive lock file that every command writing a dataset, an eval run or a
training run holds while it writes.

The lock is `fcntl.flock` on ``<folder>/<name>`` (released by the kernel when the process dies, even on
kill -9, so a crash never leaves a stale lock). The holder writes its pid into the file, and a second
writer's error names it. (`filelock` truncates the file when it *tries* the lock, which would erase the
holder's pid before the loser could read it, hence plain fcntl.) The file is removed on release; after a
crash it stays, holding a dead pid, and the next writer simply takes it.
"""
from __future__ import annotations

import os
from pathlib import Path

from navtune.core.errors import NavtuneError

LOCK_FILE = ".navtune.lock"


class FolderLockedError(NavtuneError):
    """Another process holds the folder's lock; `pid` is the holder's (None when unreadable)."""

    def __init__(self, message: str = "", *, file=None, field=None, where=None, pid: int | None = None):
        super().__init__(message, file=file, field=field, where=where)
        self.pid = pid


class FolderLock:
    """``with FolderLock(folder, what="dataset"):`` holds the folder's lock, or raises `FolderLockedError`.

    `name` picks the lock file (eval shards use one per shard, so the shards of one run may run together)."""

    def __init__(self, folder: str | os.PathLike, what: str = "folder", name: str = LOCK_FILE):
        self.folder = Path(folder)
        self.path = self.folder / name
        self.what = what
        self._fd: int | None = None
        self._made_folder = False

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "FolderLock":
        """Take the lock (shared with other `FolderLock`s of this process on the same file: the lock keeps
        *processes* apart; a process resuming its own folder, e.g. a test simulating a crash, may reopen it)."""
        if self._fd is not None:
            return self
        key = os.path.abspath(self.path)
        held = _HELD.get(key)
        if held is not None:
            held[1] += 1
            self._fd = held[0]
            return self
        self._made_folder = not self.folder.exists()
        self._fd = _lock_file(self.path, self.what)
        _HELD[key] = [self._fd, 1]
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        self._fd = None
        key = os.path.abspath(self.path)
        held = _HELD.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] > 0:
            return
        del _HELD[key]
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(held[0])  # closing the descriptor releases the flock
        if self._made_folder:  # nothing was written (e.g. an error before the work): leave no empty folder
            try:
                self.folder.rmdir()
            except OSError:
                pass

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:
            pass


#: lock file -> [descriptor, number of FolderLocks of this process holding it]
_HELD: dict[str, list[int]] = {}


def _lock_file(path: Path, what: str) -> int:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(10):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            who = f"pid {pid}" if pid is not None else "another process"
            raise FolderLockedError(
                f"another navtune process ({who}) is writing this {what}; wait for it to finish or use "
                "another folder", file=path, pid=pid) from None
        try:  # the holder may have removed the file between our open and our lock: lock the new one
            same = os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)
    raise FolderLockedError(f"could not take the lock of this {what}", file=path)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None
