"""``--out`` as a symlink, a mount point, on a read-only or full file system; SIGINT and
SIGTERM at several moments of a run: either the previous output or the complete new one,
and nothing else beside it (issue 16)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pktsim.cli import main

COMPLETE = {"capture.pcapng", "trace.jsonl", "trace.txt", "pcap", "nodes"}
DEMO = COMPLETE | {"changes"}  # `pktsim demo` adds its change story's two runs in changes/
LONG_TRAFFIC = """\
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {name: many-pings, from: default/client, to: default/app, protocol: icmp, count: 20000}
"""


def demo(out: Path, *extra: str) -> int:
    return main(["demo", "--quiet", "--force", "--out", str(out), *extra])


def test_a_symlink_to_a_full_folder_is_replaced_through_the_link(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "old.txt").write_text("previous run")
    (tmp_path / "link").symlink_to("real")
    assert demo(tmp_path / "link") == 0
    assert (tmp_path / "link").is_symlink()
    assert set(os.listdir(tmp_path / "real")) == DEMO
    assert sorted(os.listdir(tmp_path)) == ["link", "real"]


def test_a_symlink_to_an_empty_folder_works(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert demo(tmp_path / "link") == 0
    assert set(os.listdir(tmp_path / "real")) == DEMO


def test_a_symlink_loop_is_exit_2(tmp_path, capsys):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    assert demo(tmp_path / "a") == 2
    assert "--out: " in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


def test_a_dangling_symlink_gets_its_folder_made(tmp_path):
    (tmp_path / "link").symlink_to("made")
    assert demo(tmp_path / "link") == 0
    assert set(os.listdir(tmp_path / "made")) == DEMO


@pytest.fixture
def mount_point(tmp_path):
    point = tmp_path / "volume"
    point.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "none", str(point)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and mount (a tmpfs stands for a Docker volume)")
    yield point
    subprocess.run(["umount", str(point)], check=False)


def test_a_mount_point_as_out_gets_the_files_inside_it(mount_point):
    (mount_point / "old.txt").write_text("previous run")
    assert demo(mount_point) == 0
    assert set(os.listdir(mount_point)) == DEMO


def test_a_read_only_file_system_is_exit_2_naming_the_path(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "none",
                                            str(ro)], capture_output=True).returncode:
        pytest.skip("needs root and mount")
    try:
        assert demo(ro / "out") == 2
    finally:
        subprocess.run(["umount", str(ro)], check=False)
    err = capsys.readouterr().err
    assert f"--out: '{ro / 'out'}' cannot write" in err and "Read-only file system" in err


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EDQUOT])
def test_a_full_disk_or_a_missing_permission_mid_run_is_exit_2(tmp_path, capsys,
                                                              monkeypatch, code):
    import pktsim.api

    def refuse(folder: Path, *_: object) -> None:
        raise OSError(code, os.strerror(code), str(folder / "nodes"))

    monkeypatch.setattr(pktsim.api, "write_dumps", refuse)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("previous run")
    assert demo(tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert f"--out: '{tmp_path / 'out'}' cannot write" in err and os.strerror(code) in err
    assert "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["out"]
    assert os.listdir(tmp_path / "out") == ["old.txt"]


def _start(tmp_path: Path) -> subprocess.Popen[bytes]:
    (tmp_path / "traffic.yaml").write_text(LONG_TRAFFIC)
    demo_yaml = Path(__file__).resolve().parents[2] / "pktsim" / "data" / "demo.yaml"
    cmd = [sys.executable, "-m", "pktsim", "run", str(demo_yaml),
           str(tmp_path / "traffic.yaml"), "--out", str(tmp_path / "out"), "--force",
           "--quiet"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("after", [0.0, 0.05, 0.3, 1.0, 2.5])
def test_a_signal_at_any_moment_leaves_the_old_or_the_complete_new_output(tmp_path, signum,
                                                                         after):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("previous run")
    proc = _start(tmp_path)
    time.sleep(after)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    # A signal in the interpreter's own first milliseconds, while it still imports the
    # entry point (a loaded machine stretches them), gets Python's traceback; once
    # ``pktsim.cli.main`` runs, none (its frames would be in the traceback).
    ran = b", in main" in err or b", in _main" in err
    assert b"Traceback" not in err or (not ran and after < 0.1), err.decode()
    assert sorted(os.listdir(tmp_path)) == ["out", "traffic.yaml"]
    left = set(os.listdir(tmp_path / "out"))
    if proc.returncode == 0:  # the signal came after the run had finished
        assert left == COMPLETE
    else:
        # -signum: the signal came during the interpreter's own start, before pktsim ran
        assert proc.returncode in (128 + signum, -signum), err.decode()
        assert left in ({"old.txt"}, COMPLETE)


def test_a_signal_the_interpreter_wraps_is_still_a_signal() -> None:
    """A SIGTERM raised while a class is being made reaches the CLI as ``RuntimeError:
    Error calling __set_name__`` with the interrupt as its cause: it exits 143, not 1."""
    from pktsim import cli, interrupts

    def wrapped(args: object) -> int:
        try:
            raise interrupts.Terminated(15)
        except KeyboardInterrupt as exc:
            raise RuntimeError("Error calling __set_name__ on 'Field' instance") from exc

    original = cli._dispatch
    cli._dispatch = wrapped  # type: ignore[assignment]
    try:
        assert cli.main(["check", "-"]) == 143
    finally:
        cli._dispatch = original
