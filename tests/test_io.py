"""lmolt_hub.io: the one atomic write. A failure keeps the old file and leaves no temporary file."""

from __future__ import annotations

import json
import os

import pytest

from lmolt_hub import io as atomic_io


def test_text_bytes_json_land_whole(tmp_path):
    p = tmp_path / "deep" / "f.json"  # the folder is created
    assert atomic_io.write_json(p, {"b": 1, "a": [1, 2]}, sort_keys=True) == p
    assert p.read_text() == '{"a": [1, 2], "b": 1}\n'
    atomic_io.write_text(p, "héllo\r\n")
    assert p.read_bytes() == "héllo\r\n".encode()  # no newline translation
    atomic_io.write_bytes(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    assert os.listdir(p.parent) == ["f.json"]


def test_a_failing_writer_keeps_the_old_file_and_no_temp(tmp_path):
    p = tmp_path / "f.txt"
    p.write_text("old")

    def half(f):
        f.write(b"half")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        atomic_io.write_with(p, half)
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["f.txt"]
    with pytest.raises(TypeError):
        atomic_io.write_json(p, {"x": object()})
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["f.txt"]


def test_a_crash_at_the_rename_keeps_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "f.txt"
    p.write_text("old")

    def crash(src, dst):
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        atomic_io.write_text(p, "new")
    monkeypatch.undo()
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["f.txt"]


def test_atomic_path_hands_a_name_to_writers_that_want_one(tmp_path):
    p = tmp_path / "stats.npz"
    with atomic_io.atomic_path(p, suffix=".npz") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".npz") and tmp.name.startswith(".tmp-")
        tmp.write_bytes(b"npz")
        assert not p.exists()  # invisible until the block ends
    assert p.read_bytes() == b"npz" and os.listdir(tmp_path) == ["stats.npz"]


def test_tmp_dir_keeps_partials_elsewhere(tmp_path):
    (tmp_path / "tmp").mkdir()
    seen = []

    def fill(f):
        seen.extend(os.listdir(tmp_path / "tmp"))
        f.write(json.dumps([1]).encode())

    atomic_io.write_with(tmp_path / "out" / "blob", fill, tmp_dir=tmp_path / "tmp")
    assert len(seen) == 1 and (tmp_path / "out" / "blob").read_text() == "[1]"
    assert os.listdir(tmp_path / "tmp") == []


def test_atomic_dir_replaces_a_folder_whole_or_not_at_all(tmp_path):
    out = tmp_path / "model"
    with atomic_io.atomic_dir(out) as tmp:
        tmp.mkdir()
        (tmp / "a.txt").write_text("1")
        assert not out.exists()
    assert (out / "a.txt").read_text() == "1"
    with pytest.raises(RuntimeError), atomic_io.atomic_dir(out) as tmp:
        tmp.mkdir()
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("crash mid-build")
    assert (out / "a.txt").read_text() == "1" and os.listdir(tmp_path) == ["model"]
    with atomic_io.atomic_dir(out) as tmp:  # replace: the old content is gone, nothing left beside
        tmp.mkdir()
        (tmp / "b.txt").write_text("2")
    assert os.listdir(out) == ["b.txt"] and os.listdir(tmp_path) == ["model"]


def test_atomic_dir_keep_existing_lets_the_first_finisher_win(tmp_path):
    out = tmp_path / "cache"
    with atomic_io.atomic_dir(out, keep_existing=True) as mine:
        mine.mkdir()
        (mine / "x").write_text("mine")
        with atomic_io.atomic_dir(out, keep_existing=True) as theirs:  # a racer finishes first
            theirs.mkdir()
            (theirs / "x").write_text("theirs")
    assert (out / "x").read_text() == "theirs" and os.listdir(tmp_path) == ["cache"]
