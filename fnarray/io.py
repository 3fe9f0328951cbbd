"""``fa.save`` / ``fa.load``: checkpoints in a safe, documented container (never pickle).

File format (version 1)
-----------------------
A file is a ZIP archive whose entries are all *stored* (no compression, so a size in the
directory is the size on disk and no entry can expand into a memory bomb):

* ``manifest.json`` — UTF-8 JSON::

      {"format": "fnarray.save", "version": 1, "byteorder": "little", "root": NODE}

* ``data/0``, ``data/1``, … — one raw buffer per array: the C-ordered elements in
  little-endian byte order, exactly ``itemsize * prod(shape)`` bytes.

Every NODE is a JSON object tagged by ``"t"``:

=============  ==========================================================================
``none``       ``None``
``bool``       ``{"v": true}``
``int``        ``{"v": 12}`` (arbitrary precision)
``float``      ``{"v": "0x1.8p+1"}`` (``float.hex``: exact, and covers ``inf``/``nan``)
``complex``    ``{"re": hex, "im": hex}``
``str``        ``{"v": "text"}``
``list``       ``{"items": [NODE, ...]}``
``tuple``      ``{"items": [NODE, ...]}`` (tuples load back as tuples)
``dict``       ``{"items": [[KEY, NODE], ...]}``; a KEY is a ``str``, ``int``, ``float``,
               ``bool``, ``complex``, ``none`` or ``tuple`` node (so ``{0: ...}`` keeps its
               int key); insertion order is kept; duplicate keys are an error
``array``      an ``fa.Array``: ``{"dtype": "float32", "shape": [2, 3], "device": "cpu",
               "entry": "data/0"}``
``ndarray``    a ``numpy.ndarray``, same fields (loads back as a writable NumPy array)
``npscalar``   a NumPy scalar such as ``np.float32(1)``, same fields with ``shape: []``
``tensor``     a compat tensor or parameter: ``{"requires_grad": false, "array": NODE}``;
               its value is stored, not its autograd history, and it loads back as a
               tensor when ``fnarray.compat`` is available (else as an ``fa.Array``)
``dtype``      a dtype: ``{"v": "float32", "torch": true}``; a NumPy dtype, or with
               ``torch`` the compat dtype ``torch.float32`` (PyTorch's ``weights_only``
               loads dtypes, so checkpoints hold them)
``size``       a compat ``torch.Size``: ``{"items": [NODE, ...]}`` of ints (a tuple where
               ``fnarray.compat`` is unavailable)
``device``     a compat ``torch.device``: ``{"v": "cuda:0"}``
=============  ==========================================================================

``dtype`` is one of fnarray's dtype names (``bool``, ``int8`` … ``uint64``, ``float16``,
``float32``, ``float64``, ``complex64``, ``complex128``, ``bfloat16``).  bfloat16 values
are stored as their two little-endian bytes; loading them imports ``ml_dtypes`` (the
``bfloat16`` extra), and without it the load fails with a ``SerializationError`` saying so.

Safety
------
Loading reads JSON and raw numbers only, so it can never run code.  Everything a file
claims is checked before memory is allocated for it: entry sizes against the file size,
every array's byte size against its entry, nesting depth (at most ``MAX_DEPTH``), dtype
names, shapes, duplicate keys and entry names.  Any foreign, truncated or corrupted input
(including PyTorch's pickle-based files) raises :class:`SerializationError` naming the
path and the problem.

Writes are atomic: the archive is written to a temporary file in the target directory,
flushed and fsynced, then renamed over the target with ``os.replace`` (and the directory
is fsynced), so a crash mid-save leaves the previous file intact.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

from fnarray import _interop
from fnarray.core.array import Array
from fnarray.core.bfloat16 import bfloat16_dtype, is_bfloat16
from fnarray.core.device import get_device

FORMAT, VERSION = "fnarray.save", 1
MANIFEST = "manifest.json"
MAX_DEPTH = 200
MAX_NDIM = 64
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # identical objects give identical files
_DTYPES = {name: np.dtype(name) for name in (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128")}
_SUPPORTED = ", ".join([*_DTYPES, "bfloat16"])
_SCALAR_KEYS = ("none", "bool", "int", "float", "complex", "str", "tuple")


class SerializationError(ValueError):
    """A file that ``fa.load`` cannot read: foreign, truncated, corrupted or malicious."""


# ----------------------------------------------------------------------------- saving

def save(obj: Any, path) -> None:
    """Write ``obj`` (nested dicts/lists/tuples of arrays, tensors, NumPy arrays, numbers,
    strings and ``None``) to ``path`` (a path or a writable binary file object).

    The write is atomic for paths: readers see the old file or the new one, never a mix.
    Unsupported objects raise ``TypeError`` naming where they sit in ``obj``.
    """
    entries: list[tuple[str, np.ndarray]] = []
    root = _encode(obj, entries, "obj", 0)
    manifest = {"format": FORMAT, "version": VERSION, "byteorder": "little", "root": root}
    header = json.dumps(manifest, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if hasattr(path, "write"):
        _write_archive(path, header, entries)
        return
    _atomic_write(os.fspath(path), lambda f: _write_archive(f, header, entries))


def _encode(obj, entries: list, where: str, depth: int) -> dict:
    if depth > MAX_DEPTH:
        raise ValueError(f"fa.save: {where} is nested more than {MAX_DEPTH} levels deep "
                         f"(is there a reference cycle?)")
    if obj is None:
        return {"t": "none"}
    if isinstance(obj, np.generic):  # before the Python types: np.float64 is a float
        return _encode_buffer("npscalar", np.asarray(obj), None, entries)
    if isinstance(obj, bool):
        return {"t": "bool", "v": obj}
    if isinstance(obj, int):
        return {"t": "int", "v": int(obj)}
    if isinstance(obj, float):
        return {"t": "float", "v": float(obj).hex()}
    if isinstance(obj, complex):
        return {"t": "complex", "re": obj.real.hex(), "im": obj.imag.hex()}
    if isinstance(obj, str):
        return {"t": "str", "v": obj}
    if isinstance(obj, Array):
        return _encode_buffer("array", np.asarray(obj), str(obj.device), entries)
    if _interop.is_tensor(obj):
        array = obj.array
        node = _encode_buffer("array", np.asarray(array), str(array.device), entries)
        out = {"t": "tensor", "requires_grad": bool(obj.requires_grad), "array": node}
        if type(obj).__name__ == "Parameter":
            out["parameter"] = True  # loads back as nn.Parameter, as in PyTorch
        return out
    if isinstance(obj, np.ndarray):
        return _encode_buffer("ndarray", obj, None, entries)
    special = _encode_compat_value(obj)
    if special is not None:
        return special
    if type(obj) in (list, tuple):
        items = [_encode(v, entries, f"{where}[{i}]", depth + 1) for i, v in enumerate(obj)]
        return {"t": type(obj).__name__, "items": items}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            inner = f"{where}[{k!r}]"
            key = _encode(k, entries, inner, depth + 1)
            if key["t"] not in _SCALAR_KEYS:
                raise TypeError(f"fa.save: the key {k!r} in {where} is a {type(k).__name__}; "
                                f"keys must be str, int, float, bool, complex, None or tuples")
            items.append([key, _encode(v, entries, inner, depth + 1)])
        return {"t": "dict", "items": items}
    raise TypeError(
        f"fa.save: cannot store {where} of type {type(obj).__module__}.{type(obj).__qualname__}; "
        f"supported: dict, list, tuple, int, float, bool, complex, str, None, fa.Array, "
        f"compat tensors, NumPy arrays and scalars (convert other objects, e.g. with a "
        f"state_dict())")


def _encode_compat_value(obj):
    """The node of a dtype (NumPy's or compat's), a compat ``Size`` or ``device``; else None.
    Compat classes are recognised by module and name, so saving never imports the layer."""
    if isinstance(obj, np.dtype):
        return _dtype_node(obj, torch=False)
    cls = type(obj)
    if not cls.__module__.startswith("fnarray.compat"):
        return None
    if cls.__name__ == "dtype" and isinstance(getattr(obj, "dtype", None), np.dtype):
        return _dtype_node(obj.dtype, torch=True)
    if cls.__name__ == "Size" and isinstance(obj, tuple):
        return {"t": "size", "items": [{"t": "int", "v": int(d)} for d in obj]}
    if cls.__name__ == "device":
        return {"t": "device", "v": str(obj)}
    return None


def _storable(dtype: np.dtype) -> bool:
    return dtype.name in _DTYPES or is_bfloat16(dtype)


def _dtype_node(dtype: np.dtype, torch: bool) -> dict:
    if not _storable(dtype):
        raise TypeError(f"fa.save: cannot store the dtype {dtype}; supported dtypes: "
                        f"{_SUPPORTED}")
    return {"t": "dtype", "v": dtype.name, "torch": torch}


def _encode_buffer(tag: str, value: np.ndarray, device, entries: list) -> dict:
    if not _storable(value.dtype):
        raise TypeError(f"fa.save: cannot store an array of dtype {value.dtype}; "
                        f"supported dtypes: {_SUPPORTED}")
    name = f"data/{len(entries)}"
    entries.append((name, np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))))
    node = {"t": tag, "dtype": value.dtype.name, "shape": list(value.shape), "entry": name}
    if device is not None:
        node["device"] = device
    return node


def _write_archive(f, header: bytes, entries: list) -> None:
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(zipfile.ZipInfo(MANIFEST, _FIXED_TIME), header)
        for name, value in entries:
            info = zipfile.ZipInfo(name, _FIXED_TIME)
            info.file_size = value.nbytes
            with zf.open(info, "w") as out:
                out.write(memoryview(value.reshape(-1).view(np.uint8)))


def _atomic_write(path: str, write) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- loading

def load(path, map_location=None):
    """Read an object written by :func:`save` from a path or a readable binary file.

    ``map_location``: ``None`` puts arrays back on the device they were saved from;
    ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``Device`` puts every array there; a dict
    maps saved device names to targets (``{"cuda:0": "cpu"}``; others stay put); a
    function ``f(array, saved_device_name)`` gets each array on the CPU and returns the
    array (or tensor) to use, or None to place it as saved (PyTorch's
    ``lambda storage, loc: storage`` keeps everything on the CPU).
    Anything that is not a valid fnarray file raises :class:`SerializationError`.
    A missing path raises ``FileNotFoundError``.
    """
    if hasattr(path, "read"):
        return _Reader(path, getattr(path, "name", repr(path)), map_location).run()
    with open(os.fspath(path), "rb") as f:
        return _Reader(f, os.fspath(path), map_location).run()


class _Reader:
    """One load: validates the container, then decodes the manifest tree."""

    def __init__(self, f, where: str, map_location):
        self.f, self.where = f, where
        self.mapping = map_location if isinstance(map_location, dict) or \
            callable(map_location) else None
        self.target = None if map_location is None or self.mapping is not None \
            else get_device(map_location)
        self.used: set[str] = set()

    def fail(self, problem: str) -> SerializationError:
        return SerializationError(f"fa.load({self.where!r}): {problem}")

    def run(self):
        self._check_signature()
        try:
            with zipfile.ZipFile(self.f) as zf:
                self.zf = zf
                manifest = self._read_manifest()
                return self._decode(manifest["root"], 0)
        except SerializationError:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
                KeyError, IndexError, OverflowError, RuntimeError) as e:
            # zipfile reports damaged containers through many exception types
            raise self.fail(f"the file is truncated or corrupted ({type(e).__name__}: {e})") from e

    def _check_signature(self) -> None:
        self.total_size = self.f.seek(0, os.SEEK_END)
        self.f.seek(0)
        start = self.f.read(4)
        self.f.seek(0)
        if start[:1] == b"\x80":
            raise self.fail("this is a Python pickle (e.g. a legacy torch.save file); fnarray "
                            "never unpickles, because loading a pickle can run arbitrary code")
        if start not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise self.fail(f"not an fnarray file (it starts with {start!r}, not a ZIP "
                            f"signature); write checkpoints with fa.save")

    def _read_manifest(self) -> dict:
        infos = self.zf.infolist()
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise self.fail("the archive lists an entry name twice")
        if MANIFEST not in names:
            torch_like = any(n.endswith("data.pkl") for n in names)
            raise self.fail(
                "this is a PyTorch zip checkpoint (it holds a pickle, data.pkl); fnarray never "
                "unpickles. Load it with PyTorch and re-save the tensors as NumPy arrays"
                if torch_like else f"a ZIP archive without {MANIFEST}: not written by fa.save")
        total = self.total_size
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED:
                raise self.fail(f"entry {info.filename!r} is compressed; fa.save stores "
                                f"entries uncompressed")
            if info.file_size > total:
                raise self.fail(f"entry {info.filename!r} claims {info.file_size} bytes in a "
                                f"file of {total} bytes")
        self.sizes = {i.filename: i.file_size for i in infos}
        try:
            text = self.zf.read(MANIFEST).decode("utf-8")
            manifest = json.loads(text, object_pairs_hook=self._no_duplicates)
        except RecursionError as e:
            raise self.fail("the manifest is nested too deeply") from e
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise self.fail(f"the manifest is not valid JSON ({e})") from e
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise self.fail(f"the manifest does not declare format {FORMAT!r}")
        if manifest.get("version") != VERSION or manifest.get("byteorder") != "little":
            raise self.fail(f"unsupported format version {manifest.get('version')!r} / byte "
                            f"order {manifest.get('byteorder')!r}; this fnarray reads version "
                            f"{VERSION}, little-endian")
        if "root" not in manifest:
            raise self.fail("the manifest has no root object")
        return manifest

    def _no_duplicates(self, pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise self.fail("the manifest repeats a JSON key")
        return dict(pairs)

    def _field(self, node: dict, key: str, kinds):
        value = node.get(key)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds)):
            raise self.fail(f"a {node.get('t')!r} node has a bad {key!r} field: {value!r:.80}")
        return value

    def _decode(self, node, depth: int):
        if depth > MAX_DEPTH:
            raise self.fail(f"objects are nested more than {MAX_DEPTH} levels deep")
        if not isinstance(node, dict):
            raise self.fail(f"expected a tagged object in the manifest, found {node!r:.80}")
        tag = node.get("t")
        if tag == "none":
            return None
        if tag == "bool":
            return self._field(node, "v", bool)
        if tag == "int":
            return self._field(node, "v", int)
        if tag == "float":
            return self._float(self._field(node, "v", str))
        if tag == "complex":
            return complex(self._float(self._field(node, "re", str)),
                           self._float(self._field(node, "im", str)))
        if tag == "str":
            return self._field(node, "v", str)
        if tag in ("list", "tuple"):
            items = [self._decode(v, depth + 1) for v in self._field(node, "items", list)]
            return items if tag == "list" else tuple(items)
        if tag == "dict":
            return self._dict(self._field(node, "items", list), depth)
        if tag in ("array", "ndarray", "npscalar"):
            return self._buffer(node, tag)
        if tag == "tensor":
            inner = self._field(node, "array", dict)
            if inner.get("t") != "array":
                raise self.fail("a tensor node must hold an array node")
            array = self._buffer(inner, "array")
            requires_grad = self._field(node, "requires_grad", bool)
            if node.get("parameter") is True:
                from fnarray.nn import Parameter
                return Parameter(array, requires_grad=requires_grad)
            return _interop.wrap_array(array, True, requires_grad)
        if tag in ("dtype", "size", "device"):
            return self._compat_value(node, tag, depth)
        raise self.fail(f"unknown node type {tag!r:.40}")

    def _compat_value(self, node: dict, tag: str, depth: int):
        """A dtype, ``torch.Size`` or ``torch.device`` node (compat objects when the compat
        layer is importable)."""
        compat = _interop.compat_module()
        if tag == "size":
            dims = [self._decode(v, depth + 1) for v in self._field(node, "items", list)]
            if not all(type(d) is int and d >= 0 for d in dims):
                raise self.fail(f"bad torch.Size {dims!r:.80}")
            return tuple(dims) if compat is None else compat.Size(dims)
        name = self._field(node, "v", str)
        if tag == "device":
            if compat is None:
                raise self.fail("a torch.device needs fnarray.compat to load")
            return compat.device(name)
        dtype = self._dtype(name)
        if self._field(node, "torch", bool) and compat is not None:
            return compat.dtype(dtype)
        return dtype

    def _dtype(self, name: str) -> np.dtype:
        """The dtype a file names: one of ``_DTYPES``, or bfloat16 (imports ml_dtypes)."""
        if name == "bfloat16":
            try:
                return bfloat16_dtype()
            except ImportError as e:
                raise self.fail(str(e)) from None
        if name not in _DTYPES:
            raise self.fail(f"unknown dtype {name!r:.40}")
        return _DTYPES[name]

    def _float(self, text: str) -> float:
        try:
            return float.fromhex(text)
        except (ValueError, OverflowError) as e:
            raise self.fail(f"bad float {text!r:.40}") from e

    def _dict(self, items: list, depth: int) -> dict:
        out = {}
        for item in items:
            if not isinstance(item, list) or len(item) != 2:
                raise self.fail("a dict item must be a [key, value] pair")
            if not isinstance(item[0], dict) or item[0].get("t") not in _SCALAR_KEYS:
                raise self.fail(f"bad dict key node {item[0]!r:.80}")
            key = self._decode(item[0], depth + 1)
            try:
                duplicate = key in out
            except TypeError as e:
                raise self.fail(f"unhashable dict key {key!r:.80}") from e
            if duplicate:
                raise self.fail(f"duplicate dict key {key!r:.80}")
            out[key] = self._decode(item[1], depth + 1)
        return out

    def _buffer(self, node: dict, tag: str):
        dtype_name = self._field(node, "dtype", str)
        dtype = self._dtype(dtype_name)
        shape = self._field(node, "shape", list)
        if len(shape) > MAX_NDIM or not all(type(d) is int and 0 <= d < 2**40 for d in shape):
            raise self.fail(f"bad shape {shape!r:.80}")
        if tag == "npscalar" and shape:
            raise self.fail("a NumPy scalar must have shape []")
        entry = self._field(node, "entry", str)
        if entry not in self.sizes or entry == MANIFEST:
            raise self.fail(f"missing data entry {entry!r:.80}")
        if entry in self.used:
            raise self.fail(f"data entry {entry!r} is referenced twice")
        self.used.add(entry)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes != self.sizes[entry]:
            raise self.fail(f"an array of shape {tuple(shape)} and dtype {dtype_name} needs "
                            f"{nbytes} bytes but entry {entry!r} holds {self.sizes[entry]}")
        raw = self.zf.read(entry)
        value = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(shape)
        value = value.astype(dtype, copy=False)
        if dtype_name == "bool" and value.size and raw.count(b"\x00") + raw.count(b"\x01") != len(raw):
            raise self.fail(f"entry {entry!r} holds bool values other than 0 and 1")
        if tag == "ndarray":
            return value.copy()
        if tag == "npscalar":
            return value[()]
        return self._place(value, node)

    def _place(self, value: np.ndarray, node: dict) -> Array:
        device = self.target
        if device is None:
            saved = self._field(node, "device", str) if "device" in node else "cpu"
            if callable(self.mapping):
                placed = self.mapping(_interop.from_numpy(value, "cpu"), saved)
                if placed is not None:
                    return getattr(placed, "array", placed)
            elif self.mapping is not None and saved in self.mapping:
                saved = str(self.mapping[saved])
            try:
                device = get_device(saved)
            except (RuntimeError, ValueError) as e:
                raise self.fail(f"an array was saved on {saved!r:.40}, which is not available "
                                f"here ({e}); pass map_location='cpu'") from e
        return _interop.from_numpy(value, device)


def _tuple(kinds) -> tuple:
    return kinds if isinstance(kinds, tuple) else (kinds,)
