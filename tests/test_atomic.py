"""Atomic files and folders: a process killed at any moment of a folder replacement leaves the old folder or the new
one, a symbolic link survives its replacement, new files get the permissions the umask gives any new file, and files
written into a folder replace only their namesakes, all at the end of the block."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hf_binarize.atomic import files_into, recover_folder, replaced_folder, write_atomically

# A child that replaces a folder and is killed by SIGKILL at a chosen moment: "between-renames" (the old folder
# renamed aside, the new one not yet in its place) or "writing" (inside the block).
KILLED_CHILD = textwrap.dedent("""
    import os, pathlib, signal, sys
    from hf_binarize.atomic import replaced_folder

    target, moment = pathlib.Path(sys.argv[1]), sys.argv[2]
    rename = pathlib.Path.rename

    def killed_after_first_rename(self, destination):
        result = rename(self, destination)
        os.kill(os.getpid(), signal.SIGKILL)
        return result

    if moment == "between-renames":
        pathlib.Path.rename = killed_after_first_rename
    with replaced_folder(target) as staging:
        (staging / "model.txt").write_text("new")
        if moment == "writing":
            os.kill(os.getpid(), signal.SIGKILL)
""")


def killed_replacement(target: Path, moment: str) -> None:
    result = subprocess.run([sys.executable, "-c", KILLED_CHILD, str(target), moment], capture_output=True,
                            timeout=120, cwd=Path(__file__).parents[1])
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()


def hidden(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def old_model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.txt").write_text("old")
    return folder


def test_a_kill_between_the_renames_is_undone_by_the_next_run(tmp_path):
    target = old_model(tmp_path / "out")
    killed_replacement(target, "between-renames")
    assert not target.exists() and len(hidden(tmp_path)) == 2  # the old folder renamed aside, the new one
    recover_folder(target)
    assert (target / "model.txt").read_text() == "old" and hidden(tmp_path) == []


def test_the_next_replacement_deletes_what_a_killed_one_was_writing(tmp_path):
    target = old_model(tmp_path / "out")
    killed_replacement(target, "writing")
    assert len(hidden(tmp_path)) == 1 and (target / "model.txt").read_text() == "old"
    with replaced_folder(target) as staging:
        (staging / "model.txt").write_text("newer")
    assert (target / "model.txt").read_text() == "newer" and hidden(tmp_path) == []


def test_what_live_processes_or_the_user_made_is_left_alone(tmp_path):
    target = tmp_path / "out"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # A process still writing (named as replaced_folder names its folders), a backup the user made.
        live = tmp_path / f".out.{socket.gethostname()}.{sleeper.pid}.0123abcd.tmp"
        mine = tmp_path / ".out.backup"
        live.mkdir()
        mine.mkdir()
        with replaced_folder(target) as staging:
            (staging / "model.txt").write_text("new")
        assert hidden(tmp_path) == sorted([live.name, mine.name])
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_symlinked_target_keeps_its_link_and_gets_the_new_contents(tmp_path):
    real = old_model(tmp_path / "store" / "model")
    link = tmp_path / "out"
    link.symlink_to(real, target_is_directory=True)
    with replaced_folder(link) as staging:
        (staging / "model.txt").write_text("new")
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert (link / "model.txt").read_text() == "new"
    assert hidden(tmp_path) == [] and hidden(real.parent) == []


def test_write_atomically_gives_the_umask_permissions_without_changing_the_umask(tmp_path, monkeypatch):
    previous = os.umask(0o027)
    try:
        def no_umask(mask):
            raise AssertionError("the process-wide umask changed (racy with other threads)")

        monkeypatch.setattr(os, "umask", no_umask)
        path = write_atomically(tmp_path / "a" / "result.json", b"{}")
    finally:
        monkeypatch.undo()
        os.umask(previous)
    assert path.read_bytes() == b"{}"
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.json"]


def test_write_atomically_leaves_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "result.json"
    path.write_text("old")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        write_atomically(path, b"new")
    monkeypatch.undo()
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_files_into_replaces_what_it_writes_and_nothing_else(tmp_path):
    target = old_model(tmp_path / "out")
    (target / "notes.txt").write_text("mine")
    with files_into(target) as staging:
        (staging / "model.txt").write_text("new")
        (staging / "config.json").write_text("{}")
        # Nothing reaches the target before the block completes.
        assert (target / "model.txt").read_text() == "old" and not (target / "config.json").exists()
    assert {p.name: p.read_text() for p in target.iterdir()} == {"model.txt": "new", "config.json": "{}",
                                                                "notes.txt": "mine"}
    assert hidden(tmp_path) == []
    with files_into(tmp_path / "new") as staging:
        (staging / "model.txt").write_text("first")
    assert (tmp_path / "new" / "model.txt").read_text() == "first"


def test_files_into_leaves_the_target_as_it_was_on_an_error(tmp_path):
    target = old_model(tmp_path / "out")
    with pytest.raises(RuntimeError), files_into(target) as staging:
        (staging / "model.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert [p.name for p in target.iterdir()] == ["model.txt"] and (target / "model.txt").read_text() == "old"
    assert hidden(tmp_path) == []
