"""fa.save / fa.load: round trips, atomic writes, and hostile or damaged files."""

import io
import json
import math
import os
import pickle
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnarray as fa
from fnarray import _interop

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64", "complex64", "complex128"]


def roundtrip(obj, tmp_path, **kw):
    path = tmp_path / "obj.fa"
    fa.save(obj, path)
    return fa.load(path, **kw)


def assert_same(a, b):
    assert type(a) is type(b) or (_interop.is_tensor(a) and _interop.is_tensor(b)), (a, b)
    if isinstance(a, (fa.Array, np.ndarray)) or _interop.is_tensor(a):
        va, vb = _interop.to_numpy(a), _interop.to_numpy(b)
        assert va.dtype == vb.dtype and va.shape == vb.shape
        np.testing.assert_array_equal(va, vb)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


@pytest.mark.parametrize("dtype", DTYPES)
def test_roundtrip_every_dtype(dtype, tmp_path):
    rng = np.random.default_rng(0)
    values = (rng.standard_normal((3, 4)) * 50).astype(dtype)
    obj = {"x": fa.asarray(values), "scalar": fa.asarray(values[0, 0]),
           "empty": fa.asarray(values[:0]), "np": values.copy(), "npscalar": values[1, 1]}
    assert_same(obj, roundtrip(obj, tmp_path))


def test_roundtrip_python_structures(tmp_path):
    obj = {"int": 3, "big": 2**100, "neg": -7, "float": 0.1, "inf": float("-inf"),
           "nan": float("nan"), "complex": 1.5 - 2j, "bool": True, "none": None, "str": "héllo",
           0: "int key", 2.5: "float key", (1, "a"): "tuple key", None: "none key",
           "tuple": (1, (2.0, [3, {"deep": (None,)}])), "list": [], "empty_tuple": (),
           "arrays": [fa.zeros((0, 3)), fa.ones((2, 0, 1), dtype=fa.int8), fa.asarray(2.0)]}
    out = roundtrip(obj, tmp_path)
    assert_same(obj, out)
    assert isinstance(out["tuple"], tuple) and isinstance(out["tuple"][1][1], list)
    assert out["arrays"][2].shape == () and out["arrays"][0].shape == (0, 3)


def test_float64_is_exact_and_file_object_works(tmp_path):
    x = fa.asarray(np.array([np.pi, 1e-308, -0.0, np.nextafter(1, 2)]))
    buffer = io.BytesIO()
    fa.save({"x": x, "y": 1 / 3}, buffer)
    buffer.seek(0)
    out = fa.load(buffer)
    assert out["x"].dtype == np.float64 and out["y"] == 1 / 3
    assert np.asarray(out["x"]).tobytes() == np.asarray(x).tobytes()


def test_same_object_gives_same_bytes(tmp_path):
    obj = {"w": fa.arange(6.0).reshape(2, 3), "step": 4}
    fa.save(obj, tmp_path / "a.fa")
    fa.save(obj, tmp_path / "b.fa")
    assert (tmp_path / "a.fa").read_bytes() == (tmp_path / "b.fa").read_bytes()


def test_map_location_and_saved_device(tmp_path):
    out = roundtrip({"w": fa.ones(3)}, tmp_path, map_location="cpu")
    assert str(out["w"].device) == "cpu"
    fa.save({"w": fa.ones(3)}, tmp_path / "c.fa")
    assert str(fa.load(tmp_path / "c.fa", map_location=fa.devices()[0])["w"].device) == "cpu"


def test_compat_tensors_roundtrip(tmp_path):
    compat = _interop.compat_module()
    if compat is None:
        pytest.skip("fnarray.compat is not available")
    t = compat.tensor(np.arange(4.0, dtype=np.float32), requires_grad=True)
    out = roundtrip({"t": t, "plain": compat.tensor([1, 2])}, tmp_path)
    assert _interop.is_tensor(out["t"]) and out["t"].requires_grad
    assert not out["plain"].requires_grad
    np.testing.assert_array_equal(_interop.to_numpy(out["t"]), np.arange(4.0))


def test_unsupported_objects_name_where_they_are(tmp_path):
    path = tmp_path / "x.fa"
    fa.save({"ok": 1}, path)
    with pytest.raises(TypeError, match=r"obj\['model'\]\[1\].*set"):
        fa.save({"model": [1, {2, 3}]}, path)
    with pytest.raises(TypeError, match="dtype"):
        fa.save(np.array(["a"]), path)
    assert fa.load(path) == {"ok": 1}  # the failed saves left the old file alone
    assert os.listdir(tmp_path) == ["x.fa"]  # and no temporary files


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        fa.load(tmp_path / "nope.fa")


# ----------------------------------------------------------------------------- crash safety

_SAVER = textwrap.dedent("""
    import sys
    import numpy as np
    import fnarray as fa
    path = sys.argv[1]
    big = {"w": fa.asarray(np.ones((4_000_000,), np.float32)), "tag": "new"}
    print("saving", flush=True)
    while True:
        fa.save(big, path)
""")


def test_kill_during_save_leaves_a_loadable_file(tmp_path):
    path = tmp_path / "ckpt.fa"
    fa.save({"w": fa.zeros(3), "tag": "old"}, path)
    for delay in (0.05, 0.3):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)], stdout=subprocess.PIPE,
                                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        assert proc.stdout.readline().strip() == b"saving"
        time.sleep(delay)
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        out = fa.load(path)
        assert out["tag"] in ("old", "new")
        assert out["w"].shape == ((3,) if out["tag"] == "old" else (4_000_000,))


# ----------------------------------------------------------------------------- hostile files

def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state": Evil()}, protocol=2))
    with pytest.raises(fa.SerializationError, match=r"evil\.pt.*pickle"):
        fa.load(path)
    assert not marker.exists()


def test_pytorch_zip_checkpoint_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"a": 1}))
        zf.writestr("archive/version", "3\n")
    with pytest.raises(fa.SerializationError, match="PyTorch"):
        fa.load(path)


def write_archive(path, manifest, entries=(), compress=zipfile.ZIP_STORED):
    text = manifest if isinstance(manifest, (str, bytes)) else json.dumps(manifest)
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        zf.writestr("manifest.json", text)
        for name, data in entries:
            zf.writestr(name, data)
    return path


def header(root):
    return {"format": "fnarray.save", "version": 1, "byteorder": "little", "root": root}


def array_node(dtype="float32", shape=(2,), entry="data/0"):
    return {"t": "array", "dtype": dtype, "shape": list(shape), "entry": entry}


def nested_lists(depth):
    return '{"t":"list","items":[' * depth + "]}" * depth


BAD_FILES = {
    "bad json": ("{not json", [], "JSON"),
    "no format": (json.dumps({"root": {"t": "none"}}), [], "format"),
    "future version": ({**header({"t": "none"}), "version": 99}, [], "version"),
    "wrong dtype": (header(array_node(dtype="float128")), [("data/0", b"\0" * 32)], "dtype"),
    "object dtype": (header(array_node(dtype="object")), [("data/0", b"\0" * 16)], "dtype"),
    "size mismatch": (header(array_node(shape=(3,))), [("data/0", b"\0" * 8)], "12 bytes"),
    "absurd shape": (header(array_node(shape=(2**20, 2**20, 2**20))), [("data/0", b"\0" * 8)],
                     "shape|bytes"),
    "negative dim": (header(array_node(shape=(-2,))), [("data/0", b"\0" * 8)], "shape"),
    "missing entry": (header(array_node(entry="data/7")), [("data/0", b"\0" * 8)], "entry"),
    "entry used twice": (header({"t": "list", "items": [array_node(), array_node()]}),
                         [("data/0", b"\0" * 8)], "twice"),
    "unknown node": (header({"t": "eval", "v": "os.system('x')"}), [], "unknown node"),
    "bad float": (header({"t": "float", "v": "1e999x"}), [], "float"),
    "bool as int": (header({"t": "int", "v": True}), [], "bad 'v'"),
    "duplicate json key": ('{"format":"fnarray.save","format":"fnarray.save","version":1,'
                           '"byteorder":"little","root":{"t":"none"}}', [], "repeats"),
    "duplicate dict key": (header({"t": "dict", "items": [[{"t": "int", "v": 1}, {"t": "none"}],
                                                          [{"t": "int", "v": 1}, {"t": "none"}]]}),
                           [], "duplicate dict key"),
    "list as key": (header({"t": "dict", "items": [[{"t": "list", "items": []}, {"t": "none"}]]}),
                    [], "key"),
    "deep nesting bomb": ('{"format":"fnarray.save","version":1,"byteorder":"little","root":'
                          + nested_lists(100_000) + "}", [], "nested"),
    "just too deep": ('{"format":"fnarray.save","version":1,"byteorder":"little","root":'
                      + nested_lists(210) + "}", [], "nested more than"),
    "bad bool bytes": (header(array_node(dtype="bool", shape=(2,))), [("data/0", b"\x00\x07")],
                       "bool"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_corrupt_manifests_raise_serialization_error(case, tmp_path):
    manifest, entries, message = BAD_FILES[case]
    path = write_archive(tmp_path / "bad.fa", manifest, entries)
    with pytest.raises(fa.SerializationError, match=message) as info:
        fa.load(path)
    assert "bad.fa" in str(info.value)


def test_compressed_entries_and_plain_zips_are_refused(tmp_path):
    path = write_archive(tmp_path / "z.fa", header(array_node()), [("data/0", b"\0" * 8)],
                         compress=zipfile.ZIP_DEFLATED)
    with pytest.raises(fa.SerializationError, match="compressed"):
        fa.load(path)
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(fa.SerializationError, match="without manifest"):
        fa.load(tmp_path / "plain.zip")
    (tmp_path / "text.fa").write_text("hello")
    with pytest.raises(fa.SerializationError, match="not an fnarray file"):
        fa.load(tmp_path / "text.fa")


def valid_file_bytes() -> bytes:
    buffer = io.BytesIO()
    fa.save({"w": fa.arange(12.0).reshape(3, 4), "b": np.arange(3, dtype=np.int16),
             "meta": ("x", 1, [2.5, None])}, buffer)
    return buffer.getvalue()


def test_truncated_files(tmp_path):
    data = valid_file_bytes()
    path = tmp_path / "t.fa"
    for cut in sorted({0, 1, 3, 4, 10, 30, len(data) // 2, len(data) - 22, len(data) - 1}):
        path.write_bytes(data[:cut])
        with pytest.raises(fa.SerializationError, match="t.fa"):
            fa.load(path)


VALID = valid_file_bytes()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
                          st.integers(0, len(VALID) - 1), st.integers(0, 255)),
                min_size=1, max_size=4))
def test_fuzzed_files_only_raise_serialization_error(mutations):
    data = bytearray(VALID)
    for kind, position, byte in mutations:
        if not data:
            break
        position %= len(data)
        if kind == "flip":
            data[position] ^= 1 << (byte % 8)
        elif kind == "set":
            data[position] = byte
        elif kind == "insert":
            data[position:position] = bytes([byte])
        elif kind == "delete":
            del data[position]
        else:
            del data[position:]
    start = time.perf_counter()
    try:
        fa.load(io.BytesIO(bytes(data)))
    except fa.SerializationError:
        pass
    assert time.perf_counter() - start < 2.0
