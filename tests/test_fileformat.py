"""The file format's bytes: every fault gets one plain ModelFileError, a crash loses nothing."""

import json
import os
import pickle

import numpy as np
import pytest
import safetensors.numpy

import deltaprop as dp
from deltaprop import fileformat
from support import network


def test_truncated_files(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    header = int.from_bytes(data[:8], "little")
    for cut, message in [
        (4, "truncated or not a deltaprop file: only 4 bytes"),
        (8 + header // 2, "is truncated: the header needs"),
        (8 + header + 10, "is truncated: tensor"),
        (len(data) - 1, "is truncated: tensor"),
    ]:
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(dp.ModelFileError, match=message):
            dp.load(bad)


def test_flipped_byte_in_payload_names_the_tensor(saved, tmp_path):
    _, path = saved
    data = bytearray(path.read_bytes())
    header = int.from_bytes(data[:8], "little")
    entry = json.loads(data[8 : 8 + header])["2.weight"]
    data[8 + header + entry["data_offsets"][0] + 5] ^= 0x40
    bad = tmp_path / "flip.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(dp.ModelFileError, match=r"checksum mismatch in tensor '2.weight'"):
        dp.load(bad)


def test_any_flipped_byte_in_the_header_is_detected(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    header = int.from_bytes(data[:8], "little")
    rng = np.random.default_rng(0)
    for position in rng.choice(np.arange(8, 8 + header), size=40, replace=False):
        flipped = bytearray(data)
        flipped[position] ^= 0x01
        bad = tmp_path / "h.safetensors"
        bad.write_bytes(bytes(flipped))
        with pytest.raises(dp.ModelFileError):
            dp.load(bad)


def test_newer_format_version_is_refused(saved, tmp_path, monkeypatch):
    _, path = saved
    monkeypatch.setattr(fileformat, "FORMAT_VERSION", fileformat.FORMAT_VERSION + 1)
    newer = tmp_path / "newer.safetensors"
    dp.save(dp.load(path)[0], newer)
    monkeypatch.undo()
    with pytest.raises(
        dp.ModelFileError,
        match=r"format version 2, newer than this library reads "
        r"\(up to 1\); upgrade",
    ):
        dp.load(newer)


def test_pickle_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "model.safetensors"
    bad.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(dp.ModelFileError, match="is a Python pickle.*never unpickles"):
        dp.load(bad)
    with pytest.raises(dp.ModelFileError):
        dp.inspect_file(bad)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"is empty \(0 bytes\)"),
        (b"PK\x03\x04" + bytes(100), "is a zip archive"),
        (np.random.default_rng(0).bytes(4096), "not a deltaprop file"),
        (b"\x10\x00\x00\x00\x00\x00\x00\x00" + b'{"a": 1}        ', "not written by deltaprop"),
    ],
)
def test_not_deltaprop_files(tmp_path, content, message):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(content)
    with pytest.raises(dp.ModelFileError, match=message):
        dp.load(bad)


def test_plain_safetensors_file_is_not_a_deltaprop_file(tmp_path):
    path = tmp_path / "plain.safetensors"
    safetensors.numpy.save_file({"w": np.zeros(3, np.float32)}, str(path))
    with pytest.raises(
        dp.ModelFileError, match="safetensors file but was not written by deltaprop"
    ):
        dp.load(path)


def test_directory_and_oversized_header(tmp_path):
    with pytest.raises(dp.ModelFileError, match="is a directory"):
        dp.load(tmp_path)
    big = tmp_path / "big.safetensors"
    size = fileformat.HEADER_CAP + 1
    big.write_bytes(size.to_bytes(8, "little") + b"{" + b" " * (size - 1))
    with pytest.raises(dp.ModelFileError, match="over the cap"):
        dp.load(big)
    with pytest.raises(FileNotFoundError, match="no such model file"):
        dp.load(tmp_path / "missing.safetensors")


def test_crash_mid_write_leaves_the_old_file_intact(saved, tmp_path, monkeypatch, rng):
    net, path = saved
    before = path.read_bytes()
    calls = []

    def failing_write(file, chunk):
        calls.append(len(chunk))
        file.write(chunk[: len(chunk) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(fileformat, "_write_chunk", failing_write)
    with pytest.raises(OSError, match="disk full"):
        dp.save(network(rng), path)
    assert calls and path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    dp.load(path)


# --- checkpoints and exact resume -------------------------------------------------------------
