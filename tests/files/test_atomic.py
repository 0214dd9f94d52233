"""Writes that nothing can half-do: only regular files replaced, nothing left by a kill."""

import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

import deltaprop as dp
from deltaprop.cli import app


@pytest.fixture
def net():
    return dp.mlp([3, 4, 2], rng=np.random.default_rng(0))


@pytest.mark.parametrize("through_link", [False, True])
def test_a_fifo_is_never_replaced(net, tmp_path, through_link):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    target = fifo
    if through_link:
        target = tmp_path / "model.safetensors"
        target.symlink_to(fifo)
    with pytest.raises(FileExistsError, match=r"it is a FIFO \(named pipe\), not a regular file"):
        dp.save(net, target)
    assert fifo.is_fifo() and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        {"pipe", target.name}
    )


def test_a_device_node_is_never_replaced(net, tmp_path):
    """A node made here, not the system's /dev/null: a failing test must not destroy that."""
    node = tmp_path / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("this process may not make device nodes")
    link = tmp_path / "model.safetensors"
    link.symlink_to(node)
    for target in (node, link):
        with pytest.raises(FileExistsError, match="it is a character device, not a regular file"):
            dp.save(net, target)
    assert stat.S_ISCHR(os.stat(node).st_mode) and os.stat(node).st_rdev == os.makedev(1, 3)


def test_the_command_line_refuses_such_an_out_even_with_force(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = CliRunner().invoke(
        app, ["train", "--data", "xor", "--epochs", "1", "--out", str(fifo), "--force"]
    )
    assert result.exit_code == 2
    assert "it is a FIFO (named pipe), not a regular file" in result.output
    assert fifo.is_fifo()


KILLED_WRITER = """
import sys, time
import numpy as np
import deltaprop as dp
from deltaprop.files import atomic

def slow(file, chunk):
    file.write(chunk)
    file.flush()
    print("writing", flush=True)
    time.sleep(60)

atomic._write_chunk = slow
dp.save(dp.mlp([600, 600, 2], rng=np.random.default_rng(0)), sys.argv[1])
"""


@pytest.mark.slow
def test_a_writer_killed_mid_write_leaves_nothing_behind(net, tmp_path):
    """On Linux the file being written has no name until it is whole (O_TMPFILE)."""
    path = tmp_path / "model.safetensors"
    dp.save(net, path)
    before = path.read_bytes()
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "writing"  # a chunk is on its way to disk
        time.sleep(0.2)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(30)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    assert path.read_bytes() == before
