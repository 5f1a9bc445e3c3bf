"""A ShardkitError is a problem the user can fix: a command that raises one exits with status 2 and prints one line."""

from shardkit.cli import main


def test_a_library_error_is_exit_status_2_and_one_stderr_line(tmp_path, capsys):
    status = main(["build", "--out", str(tmp_path / "out"), "--per-task", "0"])  # BuildConfig refuses it
    out, err = capsys.readouterr()
    assert status == 2
    assert err == "shardkit build: error: per_task must be >= 1, got 0\n"
    assert "Traceback" not in out + err and not (tmp_path / "out").exists()  # refused before anything was written
