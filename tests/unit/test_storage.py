"""Rendition files: names fixed by photo and rendition, atomic writes, no
half-written file outliving its writer, nothing outside the root."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from photos.storage import PARTIAL_PREFIX, LocalStorage, prune_photo
from tests.support.services import ROOT

PHOTO = uuid.UUID("6f1c2a4e-0000-4000-8000-000000000001")


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_a_rendition_is_named_by_its_photo_and_recipe(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    assert storage.rendition_key(PHOTO, "fit-320", "jpg") == f"6f/{PHOTO}/fit-320.jpg"


def test_writing_again_replaces_the_file_and_adds_none(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    path = storage.rendition_key(PHOTO, "fit-320", "jpg")
    storage.write(path, b"first")
    storage.write(path, b"second")
    assert storage.read(path) == b"second"
    assert files(tmp_path) == [path]
    assert (tmp_path / path).stat().st_mode & 0o777 == 0o644


def test_staged_bytes_have_no_name_until_published(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    path = storage.rendition_key(PHOTO, "original", "png")
    staged = storage.stage(path, b"data")
    assert files(tmp_path) == []
    staged.publish()
    assert files(tmp_path) == [path]
    storage.stage(path, b"other").discard()
    assert storage.read(path) == b"data"
    assert files(tmp_path) == [path]


def test_publishing_over_an_existing_file_replaces_it(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    path = storage.rendition_key(PHOTO, "fit-320", "jpg")
    storage.write(path, b"old")
    storage.stage(path, b"new").publish()
    assert storage.read(path) == b"new"
    assert files(tmp_path) == [path]


@pytest.mark.parametrize(
    "relative",
    ["", ".", "..", "../x", "a/../../x", "/etc/passwd", "6f/../../outside.jpg", "6f/x/../../../y"],
)
def test_paths_that_leave_the_root_are_refused(tmp_path: Path, relative: str) -> None:
    root = tmp_path / "thumbs"
    root.mkdir()
    storage = LocalStorage(root)
    with pytest.raises(ValueError, match=r"leaves the storage root|is not a storage key"):
        storage.resolve(relative)
    with pytest.raises(ValueError):
        storage.write(relative, b"x")


def test_a_symlink_cannot_lead_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "thumbs"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    (root / "6f").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="leaves the storage root"):
        LocalStorage(root).resolve("6f/secret.txt")


def test_pruning_a_photo_keeps_the_keys_its_rows_name_and_nothing_else(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    other = uuid.UUID("6f1c2a4e-0000-4000-8000-000000000002")
    for name, ext in (("original", "png"), ("fit-320", "jpg"), ("mirror", "png"), ("square-64", "jpg")):
        storage.write(storage.rendition_key(PHOTO, name, ext), b"x")
    storage.write(storage.rendition_key(other, "fit-320", "jpg"), b"x")
    kept = [storage.rendition_key(PHOTO, "original", "png"), storage.rendition_key(PHOTO, "square-64", "jpg")]
    removed = prune_photo(storage, PHOTO, kept)
    assert sorted(removed) == [
        storage.rendition_key(PHOTO, n, e) for n, e in (("fit-320", "jpg"), ("mirror", "png"))
    ]
    assert files(tmp_path) == sorted([*kept, storage.rendition_key(other, "fit-320", "jpg")])
    assert prune_photo(storage, uuid.uuid4(), []) == []  # nothing there: nothing to do
    prune_photo(storage, PHOTO, [])
    assert not (tmp_path / "6f" / str(PHOTO)).exists(), "an emptied photo folder stays behind"


# --- writers that die ----------------------------------------------------------

WRITER = """
import sys
from pathlib import Path
from photos.storage import LocalStorage

storage = LocalStorage(Path(sys.argv[1]))
path = storage.rendition_key(__import__("uuid").UUID(sys.argv[2]), "fit-320", "jpg")
if sys.argv[3] == "stage":
    staged = storage.stage(path, b"x" * 1_000_000)
    print("staged", flush=True)
    sys.stdin.read()
else:
    n = 0
    while True:
        n += 1
        storage.write(path, str(n).encode() * 100_000)
        if n == 20:
            print("writing", flush=True)
"""


def writer(root: Path, mode: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), str(PHOTO), mode],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() in ("staged", "writing")
    return process


def test_a_writer_killed_before_publishing_leaves_nothing(tmp_path: Path) -> None:
    process = writer(tmp_path, "stage")
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert files(tmp_path) == []


def test_a_writer_killed_mid_write_leaves_one_whole_file_once_swept(tmp_path: Path) -> None:
    process = writer(tmp_path, "rewrite")
    process.send_signal(signal.SIGKILL)
    process.wait()
    # What a consumer does when it starts: its dead predecessors' partial files go.
    LocalStorage(tmp_path).sweep_partials()
    path = LocalStorage(tmp_path).rendition_key(PHOTO, "fit-320", "jpg")
    assert files(tmp_path) == [path]
    data = (tmp_path / path).read_bytes()
    version = data[: len(data) // 100_000]
    assert data == version * 100_000, "the file is not one whole version"


def test_sweeping_removes_partials_of_dead_writers_only(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    directory = tmp_path / "6f" / str(PHOTO)
    directory.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(dead.stdout)
    host = os.uname().nodename
    mine = directory / f"{PARTIAL_PREFIX}{host}-{os.getpid()}-aaaaaa"
    theirs = directory / f"{PARTIAL_PREFIX}{host}-{dead_pid}-bbbbbb"
    elsewhere = directory / f"{PARTIAL_PREFIX}other-host-{os.getpid()}-cccccc"
    for p in (mine, theirs, elsewhere):
        p.write_bytes(b"x")
    assert storage.sweep_partials() == 1
    assert sorted(p.name for p in directory.iterdir()) == sorted([mine.name, elsewhere.name])
    # Another machine's writers cannot be asked: theirs go once older than any write.
    old = os.stat(elsewhere).st_mtime - 3600
    os.utime(elsewhere, (old, old))
    assert storage.sweep_partials(older_than=600) == 1
    assert [p.name for p in directory.iterdir()] == [mine.name]

    assert LocalStorage(tmp_path / "missing").sweep_partials() == 0
