"""Reading a GGUF model file: the header parsed with every count and length bounded by the bytes left, then
validation of every key, shape, type and offset the runtime relies on. Anything wrong becomes a ModelError that
names what and where. Tensor data stays in the file's memory map; nothing is copied.

The header is parsed here rather than with the `gguf` package's reader: that reader trusts its input (a string
array claiming 2**60 entries loops for ever, an offset past the end gives a silently short view) and takes about
ten seconds over a 150k-token vocabulary, which a language server reloading a model cannot afford. The `gguf`
package still writes ckls's files and independently reads them back in the tests.
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


MAX_MESSAGE = 400  # characters of a ModelError's message: a misread name or value must not become 80 MB of text


class ModelError(ValueError):
    """The model file cannot be used; the message says why (key, tensor, offset...), in at most MAX_MESSAGE
    characters."""

    def __init__(self, message: str = ""):
        message = str(message)
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE - 40] + f"... [{len(message)} characters cut]"
        super().__init__(message)


def short(value: Any, n: int = 60) -> str:
    """repr of a name or value for a message, cut to about n characters."""
    if isinstance(value, (list, tuple)) and len(value) > 4:
        return f"[{len(value)} items]"
    text = repr(value[:n + 1] if isinstance(value, (str, bytes)) else value)
    return text if len(text) <= n else text[:n] + "..."


# ---- metadata types: every key the runtime reads is checked once here, before anything uses it -----------------
# kind -> (test, what the message calls it). Strings are str; arrays of strings are lists of bytes (token texts
# need not be UTF-8); integers of any GGUF width are int (not bool).
def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_KINDS = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "int": (_is_int, "an integer"),
    "float": (lambda v: (_is_int(v) or isinstance(v, float)), "a number"),
    "strs": (lambda v: isinstance(v, list) and all(isinstance(x, bytes) for x in v), "an array of strings"),
    "int32s": (lambda v: isinstance(v, list) and all(_is_int(x) and -(1 << 31) <= x < (1 << 31) for x in v),
               "an array of 32-bit integers"),
}
METADATA_KINDS = {
    "general.architecture": "str", "general.type": "str", "general.name": "str", "general.alignment": "int",
    "tokenizer.ggml.model": "str", "tokenizer.ggml.pre": "str", "tokenizer.ggml.tokens": "strs",
    "tokenizer.ggml.merges": "strs", "tokenizer.ggml.token_type": "int32s",
    **{f"tokenizer.ggml.{k}_token_id": "int" for k in ("bos", "eos", "padding", "unknown", "seperator", "fim_pre",
                                                       "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep")},
    "adapter.type": "str", "adapter.lora.alpha": "float",
}
# "{arch}.<suffix>" for each supported architecture
ARCH_KINDS = {"context_length": "int", "embedding_length": "int", "block_count": "int", "feed_forward_length": "int",
              "vocab_size": "int", "attention.head_count": "int", "attention.head_count_kv": "int",
              "rope.dimension_count": "int", "attention.layer_norm_rms_epsilon": "float", "rope.freq_base": "float"}


def _describe(v: Any) -> str:
    if isinstance(v, bool):
        return f"the boolean {v}"
    if isinstance(v, (int, float)):
        return f"the number {short(v)}"
    if isinstance(v, str):
        return f"a string of {len(v)} characters ({short(v, 40)})"
    if isinstance(v, list):
        kinds = sorted({"string" if isinstance(x, bytes) else "boolean" if isinstance(x, bool)
                        else "integer" if isinstance(x, int) else "number" for x in v[:1000]})
        return f"an array of {len(v)} {'/'.join(kinds) or 'values'}{'s' if kinds else ''}"
    return type(v).__name__


def check_metadata(metadata: dict[str, Any]) -> None:
    """Raises ModelError naming the first known key whose value is not of the type the runtime expects."""
    for key, value in metadata.items():
        kind = METADATA_KINDS.get(key)
        if kind is None:
            arch, _, rest = key.partition(".")
            kind = ARCH_KINDS.get(rest) if arch in SUPPORTED_ARCHS else None
        if kind is not None and not _KINDS[kind][0](value):
            raise ModelError(f"metadata key {short(key)} should be {_KINDS[kind][1]}, found {_describe(value)}")


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
    tensors: dict[str, TensorInfo]  # their data views the file's memory map

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)


class _Cursor:
    """Reads little-endian GGUF fields from a buffer; every length is checked against the bytes left."""

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

    def value(self, vtype: int, key: str) -> Any:
        if vtype in _SCALAR:
            fmt, n = _SCALAR[vtype]
            return struct.unpack("<" + fmt, self.take(n, f"value of {short(key)}"))[0]
        if vtype == 8:
            return self.string(f"value of {short(key)}").decode("utf-8", "replace")
        if vtype == 9:
            itype, count = self.u32(f"array type of {short(key)}"), self.u64(f"array length of {short(key)}")
            if itype in _SCALAR:
                fmt, n = _SCALAR[itype]
                raw = self.take(n * count, f"array {short(key)}")
                return np.frombuffer(raw, dtype="<" + fmt if fmt != "?" else np.bool_, count=count).tolist()
            if itype == 8:
                if count * 8 > self.size - self.pos:
                    raise ModelError(f"array {short(key)} claims {count} strings, more than the file can hold")
                # raw bytes: token texts need not be valid UTF-8, and 150k of them are not worth decoding
                return [self.string(f"{short(key)}[{j}]") for j in range(count)]
            raise ModelError(f"array {short(key)} has unsupported element type {itype}")
        raise ModelError(f"key {short(key)} has unknown value type {vtype}")


def _parse_header(buf: memoryview, size: int) -> tuple[dict[str, Any], list[tuple], int]:
    """Key/values, tensor infos (name, ne, type, relative offset) and the data section's start.

    ckls parses the header itself (the `gguf` package's reader takes ~10 s over a 150k-token vocabulary and
    trusts its counts); it checks every count and length against the file size as it goes."""
    c = _Cursor(buf, size)
    if bytes(c.take(4, "magic")) != GGUF_MAGIC:
        raise ModelError("not a GGUF file (bad magic)")
    version = c.u32("version")
    if version & 0xFFFF == 0 and version:
        raise ModelError("big-endian GGUF files are not supported")
    if version not in (2, 3):
        raise ModelError(f"unsupported GGUF version {version} (ckls reads versions 2 and 3)")
    n_tensors, n_kv = c.u64("tensor count"), c.u64("key/value count")
    if n_tensors > MAX_TENSORS or n_kv > MAX_KV:
        raise ModelError(f"implausible counts: {n_tensors} tensors, {n_kv} key/values")
    metadata: dict[str, Any] = {}
    for i in range(n_kv):
        key = c.string(f"key #{i}").decode("utf-8", "replace")
        if key in metadata:
            raise ModelError(f"metadata key {short(key)} appears twice")
        metadata[key] = c.value(c.u32(f"type of {short(key)}"), key)
    infos = []
    for i in range(n_tensors):
        name = c.string(f"name of tensor #{i}").decode("utf-8", "replace")
        n_dims = c.u32(f"dimension count of {short(name)}")
        if n_dims == 0 or n_dims > MAX_DIMS:
            raise ModelError(f"tensor {short(name)} has {n_dims} dimensions (1..{MAX_DIMS} supported)")
        ne = struct.unpack(f"<{n_dims}Q", c.take(8 * n_dims, f"shape of {short(name)}"))
        ttype = c.u32(f"type of {short(name)}")
        infos.append((name, ne, ttype, c.u64(f"offset of {short(name)}")))
    align = metadata.get("general.alignment", 32)
    if not isinstance(align, int) or isinstance(align, bool) or align <= 0 or align & (align - 1):
        raise ModelError(f"general.alignment = {short(align)} is not a power of two")
    data_start = (c.pos + align - 1) // align * align
    return metadata, infos, data_start


def read_gguf(path: str | os.PathLike) -> GGUFFile:
    """Opens, structurally checks and indexes a GGUF file. Raises ModelError on any defect."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise ModelError(f"cannot open model file {short(path, 200)}: {exc.strerror}") from None
    if size < 24:
        raise ModelError(f"{short(path, 200)} is too small to be a GGUF file ({size} bytes)")
    try:
        mm = np.memmap(path, mode="r")
    except (OSError, ValueError) as exc:  # a directory, no permission...
        raise ModelError(f"cannot map model file {short(path, 200)}: "
                         f"{short(getattr(exc, 'strerror', None) or exc, 200)}") from None
    metadata, infos, data_start = _parse_header(memoryview(mm), size)
    check_metadata(metadata)
    align = metadata.get("general.alignment", 32)

    tensors: dict[str, TensorInfo] = {}
    for name, ne, ttype, rel in infos:
        if name in tensors:
            raise ModelError(f"tensor {short(name)} appears twice")
        if ttype not in _BLOCKS:
            raise ModelError(f"tensor {short(name)} has type {ttype}, which ckls does not support "
                             f"(supported: {', '.join(_TYPE_NAMES.values())})")
        if any(x <= 0 or x > (1 << 31) for x in ne):
            raise ModelError(f"tensor {short(name)} has invalid shape {list(ne)}")
        blck, bsize = _BLOCKS[ttype]
        if ne[0] % blck:
            raise ModelError(f"tensor {short(name)}: row length {ne[0]} is not a multiple of {_TYPE_NAMES[ttype]}'s "
                             f"block of {blck}")
        n_rows = 1
        for x in ne[1:]:
            n_rows *= x
        nbytes = ne[0] // blck * bsize * n_rows
        offset = data_start + rel
        if rel % align:
            raise ModelError(f"tensor {short(name)} data offset {rel} is not aligned to {align}")
        if offset + nbytes > size:
            raise ModelError(f"tensor {short(name)} data [{offset}, {offset + nbytes}) lies outside the file "
                             f"(data section {data_start}..{size})")
        tensors[name] = TensorInfo(name, ttype, tuple(ne), offset, nbytes, mm[offset:offset + nbytes])
    return GGUFFile(path, size, metadata, tensors)
