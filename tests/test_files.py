"""Files written whole: a reader sees the old file or the new one, and a failed write leaves no trace."""

import os

import pytest

from shardkit.files import atomic_write, quiet_stderr, replacing


def test_atomic_write_text_and_bytes(tmp_path):
    path = tmp_path / "sub" / "out.json"
    atomic_write(path, "one\n")
    assert path.read_text() == "one\n"
    atomic_write(path, b"\x00two")
    assert path.read_bytes() == b"\x00two"
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]  # no temporary left beside it


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "out.wav"
    path.write_text("old")
    with pytest.raises(RuntimeError), replacing(path) as tmp:
        assert tmp.suffix == ".wav" and tmp.parent == path.parent  # writers that infer a format keep working
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]


def test_quiet_stderr_silences_file_descriptor_2_and_restores_it(tmp_path, capfd):
    with quiet_stderr():
        os.write(2, b"noise from C\n")
    os.write(2, b"heard\n")
    assert capfd.readouterr().err == "heard\n"
