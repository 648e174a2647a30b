"""Readers of what we write see the old file or folder or the complete new one, never a partial one.

Work in progress lives beside its target under a hidden name that says whose it is,
``.{target}.{host}.{pid}.{token}.tmp`` (being written) or ``.old`` (the replaced folder, until it is deleted), so
that a later run can tell what a killed run left behind: :func:`recover_folder` restores a replaced folder whose
replacement never arrived and deletes what dead processes of this host were writing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

# The staging folders this process is writing: a leftover with this process's id but not in here was made by an
# earlier process that had the same id (as every run in a fresh container may).
_in_progress: set[str] = set()


def write_atomically(path: str | os.PathLike, data: bytes) -> Path:
    """Writes ``data`` to a temporary file beside ``path`` and renames it into place; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = _owned_name(path, "tmp")
    # Created with mode 0o666 like any new file, so that the kernel applies the umask: the result gets the
    # permissions a plain open() would give it (tempfile.mkstemp's are private).
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def replaced_folder(target: Path) -> Iterator[Path]:
    """A new folder beside ``target`` to write into, renamed to ``target`` when the block completes (replacing what
    was there), so that an interrupted run never leaves a half-written model where a complete one is expected; on
    an error it is deleted and ``target`` left as it was.

    A ``target`` that is a symbolic link keeps its link: the folder it points to is the one replaced. What an
    earlier, killed replacement left beside ``target`` is first put right (:func:`recover_folder`).
    """
    with _staging_beside(target) as (target, staging):
        yield staging
        if target.exists():
            previous = staging.with_suffix(".old")
            target.rename(previous)
            try:
                staging.rename(target)
            except BaseException:
                previous.rename(target)
                raise
            shutil.rmtree(previous)
        else:
            staging.rename(target)


@contextlib.contextmanager
def files_into(target: Path) -> Iterator[Path]:
    """A new folder beside ``target`` to write files into, each renamed into ``target`` (created if missing) when
    the block completes, replacing the file of its name; on an error the new folder is deleted and ``target`` left
    as it was. A reader of ``target`` sees each file as it was or complete. Unlike :func:`replaced_folder`, nothing
    in ``target`` that the block did not write is touched, so ``target`` may hold files that are not the caller's.
    A symbolic link is followed, and what killed earlier calls left beside ``target`` is first put right
    (:func:`recover_folder`)."""
    with _staging_beside(target) as (target, staging):
        yield staging
        target.mkdir(exist_ok=True)
        for path in sorted(staging.iterdir()):
            os.replace(path, target / path.name)


@contextlib.contextmanager
def _staging_beside(target: Path) -> Iterator[tuple[Path, Path]]:
    """``target`` (the folder a link points to, for a link) and a new folder beside it, named as ours, after
    putting right what killed processes left there; the new folder is deleted at the end unless it was renamed."""
    target = Path(target)
    if target.is_symlink():
        target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(target)
    # Not tempfile.mkdtemp: its folders are private (mode 0700), wrong for a model folder once renamed.
    staging = _owned_name(target, "tmp")
    staging.mkdir()
    _in_progress.add(staging.name)
    try:
        yield target, staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        _in_progress.discard(staging.name)


def recover_folder(target: Path) -> None:
    """Puts right what a :func:`replaced_folder` killed by a signal or a crash left beside ``target``: when
    ``target`` is missing, the folder it had replaced (``.old``) goes back in its place; the folders that dead
    processes of this host were writing (``.tmp``) are deleted, and so is a dead process's ``.old`` once
    ``target`` is back, the replacement it had been asked for having taken place. Folders of live processes, of
    other hosts, and anything not named by :func:`replaced_folder` are left alone."""
    target = Path(target)
    if target.is_symlink():
        target = target.resolve()
    leftovers = sorted(_dead_leftovers(target), key=lambda path: path.stat().st_mtime, reverse=True)
    backups = [path for path in leftovers if path.suffix == ".old"]
    if backups and not target.exists() and not target.is_symlink():
        # The newest: the one that was in place last.
        backups[0].rename(target)
        leftovers.remove(backups[0])
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)


def _owned_name(target: Path, kind: str) -> Path:
    return target.with_name(f".{target.name}.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}.{kind}")


def _dead_leftovers(target: Path) -> Iterator[Path]:
    """The ``.tmp`` and ``.old`` folders beside ``target`` that processes of this host, no longer running, made."""
    prefix = f".{target.name}.{socket.gethostname()}."
    if not target.parent.is_dir():
        return
    for path in target.parent.iterdir():
        if not path.name.startswith(prefix) or path.is_symlink() or not path.is_dir():
            continue
        fields = path.name[len(prefix):].split(".")
        if len(fields) != 3 or not fields[0].isdigit() or fields[2] not in ("tmp", "old"):
            continue
        pid = int(fields[0])
        if pid == os.getpid():
            if path.with_suffix(".tmp").name not in _in_progress:
                yield path
        elif not _alive(pid):
            yield path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
