"""The file format's bytes: every fault gets one plain ModelFileError, a crash loses nothing."""

import json
import os
import pickle
import threading
import tracemalloc

import numpy as np
import pytest
import safetensors.numpy
from hypothesis import given, settings
from hypothesis import strategies as st

import deltaprop as dp
from deltaprop.files import atomic, model_files
from deltaprop.files import format as fileformat
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

    monkeypatch.setattr(atomic, "_write_chunk", failing_write)
    with pytest.raises(OSError, match="disk full"):
        dp.save(network(rng), path)
    assert calls and path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    dp.load(path)


# --- checkpoints and exact resume -------------------------------------------------------------


# --- loaders that cannot be abused ------------------------------------------------------------


def _in_time(call, seconds=10.0):
    """Run ``call`` in a thread; the exception it raised, or a failure if it hangs."""
    outcome = {}

    def run():
        try:
            call()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{call} still running after {seconds} s"
    return outcome.get("error")


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_only_regular_files_are_read(tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "pipe.safetensors"
        os.mkfifo(path)
    else:
        path = "/dev/zero"
    for read in (dp.load, dp.inspect_file):
        error = _in_time(lambda read=read: read(path))
        assert isinstance(error, dp.ModelFileError), error
        assert "is not a regular file" in str(error)


def test_a_large_file_is_refused_after_reading_its_first_bytes(tmp_path):
    big = tmp_path / "big.safetensors"
    with open(big, "wb") as file:
        file.write(b"\xff" * 8)
        file.truncate(2**31)  # 2 GB, sparse: nothing else on disk
    tracemalloc.start()
    with pytest.raises(dp.ModelFileError, match="first 8 bytes do not give a plausible"):
        dp.load(big)
    assert tracemalloc.get_traced_memory()[1] < 1 << 20
    tracemalloc.stop()


def _file_with(tmp_path, header: bytes, payload: bytes = b"") -> str:
    path = tmp_path / "crafted.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + payload)
    return path


def _deltaprop_header(tensors: dict, document: str) -> bytes:
    metadata = {
        "format": "deltaprop",
        "format_version": "1",
        "deltaprop": document,
        "deltaprop_sha256": fileformat.sha256(document.encode()),
    }
    return json.dumps({"__metadata__": metadata, **tensors}).encode()


@pytest.mark.parametrize(
    ("tensors", "document", "message"),
    [
        (
            {"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 16]}},
            '{"tensor_sha256": {"w": "x"}}',
            r"tensor 'w' has shape \(1099511627776, 1099511627776\) .* occupies 16 bytes",
        ),
        (
            {"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}},
            '{"tensor_sha256": {"w": "x"}}',
            "invalid header entry",
        ),
        (
            {"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}},
            '{"tensor_sha256": {"w": "x"}}',
            "occupies -4 bytes",
        ),
        ({"w": [1, 2]}, '{"tensor_sha256": {}}', "invalid header entry"),
        ({}, "[1, 2, 3]", "metadata document is not a JSON object"),
        ({}, '"text"', "metadata document is not a JSON object"),
        ({}, "{" * 100000, "metadata document is not valid JSON"),
        ({}, '{"tensor_sha256": [1]}', "checksums are not a table"),
        ({}, '{"architecture": 5}', "expected a layer description"),
        ({}, '{"architecture": {"type": "Dense", "in_features": 1e400}}', "invalid arguments"),
    ],
)
def test_crafted_headers_give_one_model_file_error(tmp_path, tensors, document, message):
    path = _file_with(tmp_path, _deltaprop_header(tensors, document))
    for read in (dp.load, dp.inspect_file):
        with pytest.raises(dp.ModelFileError, match=message):
            read(path)


def _sha(data: bytes) -> str:
    return fileformat.sha256(data)


@pytest.mark.parametrize(
    ("tensors", "payload", "message"),
    [
        (  # b's bytes are a's: the format forbids it
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
            },
            b"\x00" * 8,
            r"tensor 'b' \(bytes 4-8\) overlaps the tensor before it \(which ends at 8\)",
        ),
        (
            {"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}},
            b"\x00" * 8,
            "4 bytes before tensor 'a' belong to no tensor",
        ),
        (
            {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
            b"\x00" * 12,
            "8 bytes of trailing data follow the last tensor",
        ),
        ({}, b"\x00", "1 bytes of trailing data follow the last tensor"),
        (
            {"a": {"dtype": "F32", "shape": [1] * 65, "data_offsets": [0, 4]}},
            b"\x00" * 4,
            "tensor 'a' has 65 dimensions",
        ),
    ],
)
def test_the_safetensors_layout_rules_hold(tmp_path, tensors, payload, message):
    """Tensors tile the payload exactly, as safetensors itself requires."""
    sums = {
        name: _sha(payload[e["data_offsets"][0] : e["data_offsets"][1]])
        for name, e in tensors.items()
    }
    document = json.dumps({"tensor_sha256": sums})
    path = _file_with(tmp_path, _deltaprop_header(tensors, document), payload)
    for read in (dp.load, dp.inspect_file):
        with pytest.raises(dp.ModelFileError, match=message):
            read(path)


def test_a_valid_file_with_bytes_appended_is_refused(saved, tmp_path):
    _, path = saved
    path.write_bytes(path.read_bytes() + b"\x00" * 16)
    with pytest.raises(dp.ModelFileError, match="16 bytes of trailing data"):
        dp.load(path)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"note": "\\ud800"}', "not valid JSON"),
        ('{"n": ' + "9" * 5000 + "}", "not valid JSON"),
    ],
)
def test_unencodable_json_gives_a_model_file_error(tmp_path, document, message):
    path = _file_with(tmp_path, _deltaprop_header({}, document))
    with pytest.raises(dp.ModelFileError, match=message):
        dp.load(path)


def test_a_file_truncated_while_it_is_read_gives_a_model_file_error(saved, monkeypatch):
    """The payload is read, not memory-mapped: a shrunken file is an error, not SIGBUS."""
    _, path = saved
    data = path.read_bytes()
    real_open = fileformat.os.fdopen

    def shrinking(fd, *args, **kwargs):
        os.truncate(path, len(data) - 8)  # after the size was taken, before the tensors are read
        return real_open(fd, *args, **kwargs)

    monkeypatch.setattr(fileformat.os, "fdopen", shrinking)
    with pytest.raises(dp.ModelFileError, match="truncated: tensor .* needs"):
        dp.load(path)


VALID = None


def _valid_file_bytes() -> bytes:
    global VALID
    if VALID is None:
        net = network(np.random.default_rng(0))
        VALID = fileformat.encode(net.state_dict(), model_files.base_info(net, None, "model"))
    return VALID


@pytest.mark.slow
@settings(max_examples=300)
@given(st.data())
def test_fuzzed_bytes_load_or_give_model_file_error(data):
    """Flipped, dropped, inserted and overwritten bytes anywhere in a valid file."""
    original = bytearray(_valid_file_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "overwrite"]))
        at = data.draw(st.integers(0, len(original) - 1))
        if kind == "flip":
            original[at] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del original[at : at + data.draw(st.integers(1, 64))]
        elif kind == "insert":
            original[at:at] = data.draw(st.binary(min_size=1, max_size=16))
        else:
            original[at : at + 8] = data.draw(st.binary(min_size=8, max_size=8))
        if not original:
            break
    try:
        model_files.model_from(fileformat.read_bytes(bytes(original)))
    except dp.ModelFileError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
layer_names = st.sampled_from(["Dense", "ReLU", "Sequential", "LeakyReLU", "Softmax", "os.system"])
layer_configs = st.recursive(
    st.fixed_dictionaries({"type": layer_names}, optional={"negative_slope": json_values}),
    lambda inner: st.fixed_dictionaries(
        {"type": layer_names},
        optional={
            "layers": st.lists(inner, max_size=3),
            "in_features": st.integers(-2, 9) | json_values,
            "out_features": st.integers(-2, 9),
            "bias": json_values,
            "dtype": st.sampled_from(["float32", "float64", "int8"]) | json_values,
        },
    ),
    max_leaves=8,
)


@pytest.mark.slow
@settings(max_examples=300)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "architecture": layer_configs,
            "loss": json_values,
            "kind": json_values,
            "checkpoint": json_values,
        },
    )
)
def test_fuzzed_descriptions_load_or_give_model_file_error(document):
    """Any metadata document, with valid checksums, over a valid file's tensors."""
    net = network(np.random.default_rng(0))
    tensors = net.state_dict()
    document = {
        **document,
        "tensor_sha256": {
            n: fileformat.sha256(np.ascontiguousarray(a).data) for n, a in tensors.items()
        },
    }
    data = safetensors.numpy.save(
        tensors,
        metadata={
            "format": "deltaprop",
            "format_version": "1",
            "deltaprop": json.dumps(document),
            "deltaprop_sha256": fileformat.sha256(json.dumps(document).encode()),
        },
    )
    contents = fileformat.read_bytes(data)
    for read in (model_files.model_from, lambda c: model_files.inspect_contents(c, "<fuzz>")):
        try:
            read(contents)
        except dp.ModelFileError:
            pass


@pytest.mark.parametrize("header_size", [0x0580, 0x0480 + 0x10000])
def test_a_header_length_that_starts_like_a_pickle_still_loads(tmp_path, header_size):
    """A header of 1408 bytes begins with 0x80 0x05, as a pickle does (found by the fuzz test);
    so does one of 66688 bytes (0x80 0x04 0x01)."""
    net = dp.mlp([2, 3, 2], rng=np.random.default_rng(0))
    base = len(fileformat.encode(net.state_dict(), model_files.base_info(net, None, "model")))
    for pad in range(max(0, header_size - base - 64), header_size):
        info = {**model_files.base_info(net, None, "model"), "note": "x" * pad}
        data = fileformat.encode(net.state_dict(), info)
        if int.from_bytes(data[:8], "little") == header_size:
            break
    else:
        pytest.fail(f"no padding gives a header of {header_size} bytes")
    assert data[0] == 0x80 and 2 <= data[1] <= 5
    path = tmp_path / "m.safetensors"
    path.write_bytes(data)
    np.testing.assert_array_equal(dp.load(path)[0].flat_values, net.flat_values)
