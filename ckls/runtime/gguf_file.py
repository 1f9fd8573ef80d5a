"""Reading a GGUF model file: structural pre-check, the `gguf` package's reader, then validation of every key,
shape, type and offset the runtime relies on. Anything wrong becomes a ModelError that names what and where.

The `gguf` package trusts its input (a string array of 2**60 entries makes it loop for ever, an offset past the
end gives a silently short view), so `_prescan` walks the header first with every count bounded by the bytes
that remain in the file.
"""
from __future__ import annotations

import dataclasses
import os
import struct
from typing import Any

import numpy as np

GGUF_MAGIC = b"GGUF"
SUPPORTED_ARCHS = ("llama", "qwen2")
# GGUF value types -> (struct format, size); 8 = string, 9 = array
_SCALAR = {0: ("B", 1), 1: ("b", 1), 2: ("H", 2), 3: ("h", 2), 4: ("I", 4), 5: ("i", 4), 6: ("f", 4),
           7: ("?", 1), 10: ("Q", 8), 11: ("q", 8), 12: ("d", 8)}
_TYPE_NAMES = {0: "f32", 1: "f16", 2: "q4_0", 8: "q8_0", 12: "q4_K", 14: "q6_K", 30: "bf16"}
# elements per block, bytes per block
_BLOCKS = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 8: (32, 34), 12: (256, 144), 14: (256, 210)}
MAX_TENSORS = 1 << 16
MAX_KV = 1 << 16
MAX_DIMS = 4


class ModelError(ValueError):
    """The model file cannot be used; the message says why (key, tensor, offset...)."""


@dataclasses.dataclass
class TensorInfo:
    name: str
    type: int          # ggml type id
    ne: tuple[int, ...]  # ne[0] = row length
    offset: int        # absolute file offset of the data
    nbytes: int
    data: np.ndarray   # uint8 view into the memory map (no copy)

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES.get(self.type, f"type {self.type}")


@dataclasses.dataclass
class GGUFFile:
    path: str
    size: int
    metadata: dict[str, Any]
    tensors: dict[str, TensorInfo]
    reader: Any  # gguf.GGUFReader, kept alive: the tensors view its memory map

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)


class _Cursor:
    def __init__(self, buf: memoryview, size: int):
        self.buf, self.size, self.pos = buf, size, 0

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > self.size:
            raise ModelError(f"file truncated while reading {what} at offset {self.pos} (needs {n} bytes, "
                             f"{self.size - self.pos} left)")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def u32(self, what: str) -> int:
        return struct.unpack("<I", self.take(4, what))[0]

    def u64(self, what: str) -> int:
        return struct.unpack("<Q", self.take(8, what))[0]

    def string(self, what: str) -> bytes:
        n = self.u64(what + " length")
        return bytes(self.take(n, what))


def _prescan(buf: memoryview, size: int) -> None:
    """Walks header, key/values and tensor infos with every length checked against the file size."""
    c = _Cursor(buf, size)
    if bytes(c.take(4, "magic")) != GGUF_MAGIC:
        raise ModelError("not a GGUF file (bad magic)")
    version = c.u32("version")
    if version not in (2, 3):
        raise ModelError(f"unsupported GGUF version {version} (ckls reads versions 2 and 3)")
    n_tensors, n_kv = c.u64("tensor count"), c.u64("key/value count")
    if n_tensors > MAX_TENSORS or n_kv > MAX_KV:
        raise ModelError(f"implausible counts: {n_tensors} tensors, {n_kv} key/values")
    for i in range(n_kv):
        key = c.string(f"key #{i}")
        vtype = c.u32(f"type of {key!r}")
        if vtype in _SCALAR:
            c.take(_SCALAR[vtype][1], f"value of {key!r}")
        elif vtype == 8:
            c.string(f"value of {key!r}")
        elif vtype == 9:
            itype, count = c.u32(f"array type of {key!r}"), c.u64(f"array length of {key!r}")
            if itype in _SCALAR:
                c.take(_SCALAR[itype][1] * count, f"array {key!r}")
            elif itype == 8:
                if count * 8 > size - c.pos:
                    raise ModelError(f"array {key!r} claims {count} strings, more than the file can hold")
                for j in range(count):
                    c.string(f"{key!r}[{j}]")
            else:
                raise ModelError(f"array {key!r} has unsupported element type {itype}")
        else:
            raise ModelError(f"key {key!r} has unknown value type {vtype}")
    for i in range(n_tensors):
        name = c.string(f"name of tensor #{i}")
        n_dims = c.u32(f"dimension count of {name!r}")
        if n_dims == 0 or n_dims > MAX_DIMS:
            raise ModelError(f"tensor {name!r} has {n_dims} dimensions (1..{MAX_DIMS} supported)")
        c.take(8 * n_dims + 4 + 8, f"shape/type/offset of {name!r}")


def _field_value(field: Any) -> Any:
    """Plain Python value of a gguf ReaderField (str, int, float, bool, or list of those)."""
    from gguf import GGUFValueType

    t0 = field.types[0]
    if t0 == GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8", "replace")
    if t0 == GGUFValueType.ARRAY:
        if len(field.types) > 1 and field.types[1] == GGUFValueType.STRING:
            return [bytes(field.parts[i]).decode("utf-8", "surrogateescape") for i in field.data]
        return [field.parts[i][0].item() for i in field.data]
    return field.parts[field.data[0]][0].item()


def read_gguf(path: str | os.PathLike) -> GGUFFile:
    """Opens, structurally checks and indexes a GGUF file. Raises ModelError on any defect."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise ModelError(f"cannot open model file {path!r}: {exc.strerror}") from None
    if size < 24:
        raise ModelError(f"{path!r} is too small to be a GGUF file ({size} bytes)")
    mm = np.memmap(path, mode="r")
    _prescan(memoryview(mm), size)
    try:
        from gguf import GGUFReader

        reader = GGUFReader(path, "r")
    except ModelError:
        raise
    except Exception as exc:  # the reader raises ValueError/KeyError/IndexError... on malformed input
        raise ModelError(f"malformed GGUF file {path!r}: {type(exc).__name__}: {exc}") from None

    metadata = {}
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        try:
            metadata[name] = _field_value(field)
        except Exception as exc:
            raise ModelError(f"metadata key {name!r} is unreadable: {exc}") from None

    tensors: dict[str, TensorInfo] = {}
    data_start = reader.data_offset
    align = getattr(reader, "alignment", 32)
    for t in reader.tensors:
        name = t.name
        if name in tensors:
            raise ModelError(f"tensor {name!r} appears twice")
        ttype = int(t.tensor_type)
        if ttype not in _BLOCKS:
            raise ModelError(f"tensor {name!r} has type {ttype}, which ckls does not support "
                             f"(supported: {', '.join(_TYPE_NAMES.values())})")
        ne = tuple(int(x) for x in t.shape)
        if any(x <= 0 or x > (1 << 31) for x in ne):
            raise ModelError(f"tensor {name!r} has invalid shape {list(ne)}")
        blck, bsize = _BLOCKS[ttype]
        if ne[0] % blck:
            raise ModelError(f"tensor {name!r}: row length {ne[0]} is not a multiple of {_TYPE_NAMES[ttype]}'s "
                             f"block of {blck}")
        n_rows = int(np.prod(ne[1:], dtype=np.int64)) if len(ne) > 1 else 1
        nbytes = ne[0] // blck * bsize * n_rows
        offset = int(t.data_offset)  # absolute in the file
        if offset % align:
            raise ModelError(f"tensor {name!r} data offset {offset} is not aligned to {align}")
        if offset < data_start or offset + nbytes > size:
            raise ModelError(f"tensor {name!r} data [{offset}, {offset + nbytes}) lies outside the file "
                             f"(data section {data_start}..{size})")
        tensors[name] = TensorInfo(name, ttype, ne, offset, nbytes, mm[offset:offset + nbytes])
    return GGUFFile(path, size, metadata, tensors, reader)
