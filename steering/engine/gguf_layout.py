"""A GGUF file's header walked within its own size, before ``gguf.GGUFReader`` allocates.

``GGUFReader`` trusts the counts a header declares: a 69-byte file that declares an array of
2^40 entries makes it loop and grow past 4 GiB. This walk reads each count and length, checks
it against the bytes left in the file and against ``limits.LIMITS``, and skips fixed-size
arrays without reading them, so its time and memory are bounded by the file's size. Its
refusal names the file, the field and the figure.
"""

from __future__ import annotations

import math
import mmap
import struct
from pathlib import Path

from ..core.limits import LIMITS, LimitError, shown

MAGIC = b"GGUF"
VERSIONS = (2, 3)
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value type: bytes
_STRING, _ARRAY = 8, 9


class GGUFLayoutError(ValueError):
    """A GGUF header that declares more than the file holds or than Steerscope reads."""

    def __init__(self, name: str, detail: str):
        super().__init__(f"{name} is not a readable GGUF file: {detail}")


class _Cursor:
    def __init__(self, data, name: str):
        self.data, self.pos, self.name = data, 0, name

    def need(self, count: int, what: str) -> None:
        left = len(self.data) - self.pos
        if count > left:
            raise GGUFLayoutError(self.name, f"{what} needs {shown(count)} bytes at offset {self.pos:,}, but the file "
                                  f"has {left:,} left (truncated or corrupt)")

    def unpack(self, fmt: str, what: str):
        size = struct.calcsize(fmt)
        self.need(size, what)
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def bounded(self, limit: str, value: int, what: str) -> int:
        try:
            return LIMITS[limit].check(value, what)
        except LimitError as err:
            raise GGUFLayoutError(self.name, str(err)) from None

    def string(self, what: str) -> bytes:
        length = self.bounded("gguf_string_bytes", self.unpack("<Q", f"the length of {what}"), f"the length of {what}")
        self.need(length, what)
        self.pos += length
        return bytes(self.data[self.pos - length:self.pos])

    def value(self, kind: int, what: str, depth: int = 0) -> None:
        if kind in _FIXED:
            self.need(_FIXED[kind], what)
            self.pos += _FIXED[kind]
        elif kind == _STRING:
            self.string(what)
        elif kind == _ARRAY and depth < 2:
            item = self.unpack("<I", f"the item type of {what}")
            count = self.bounded("gguf_array_entries", self.unpack("<Q", f"the length of {what}"),
                                 f"the number of entries of {what}")
            if item in _FIXED:
                self.need(count * _FIXED[item], f"the {count:,} entries of {what}")
                self.pos += count * _FIXED[item]
            elif item in (_STRING, _ARRAY):
                self.need(count * 8, f"the {count:,} entries of {what}")  # each holds at least a length
                for index in range(count):
                    self.value(item, f"{what}[{index}]", depth + 1)
            else:
                raise GGUFLayoutError(self.name, f"{what} is an array of unknown type {item}")
        else:
            raise GGUFLayoutError(self.name, f"{what} has unknown type {kind}"
                                  + (" (arrays nested three deep)" if kind == _ARRAY else ""))


def check_layout(path: str | Path) -> dict:
    """The header's counts (``version``, ``tensors``, ``metadata``) if every declared count and
    length fits the file and the limits; a GGUFLayoutError naming the field otherwise."""
    path = Path(path)
    with open(path, "rb") as handle:
        size = path.stat().st_size
        if size < 24:
            raise GGUFLayoutError(path.name, f"{size} bytes, and a GGUF header takes 24 (truncated or corrupt)")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            cur = _Cursor(data, path.name)
            if cur.unpack("<4s", "the magic") != MAGIC:
                raise GGUFLayoutError(path.name, "it does not start with 'GGUF'")
            version = cur.unpack("<I", "the version")
            if version not in VERSIONS:
                raise GGUFLayoutError(path.name, f"GGUF version {shown(version)}; Steerscope reads versions 2 and 3")
            tensors = cur.bounded("gguf_tensors", cur.unpack("<Q", "the tensor count"), "the tensor count")
            entries = cur.bounded("gguf_metadata_entries", cur.unpack("<Q", "the metadata count"), "the metadata count")
            for index in range(entries):
                key = cur.string(f"metadata key {index}").decode("utf-8", "replace")
                cur.value(cur.unpack("<I", f"the type of {key!r}"), repr(key))
            for index in range(tensors):
                name = cur.string(f"the name of tensor {index}").decode("utf-8", "replace")
                dims = cur.bounded("gguf_dimensions", cur.unpack("<I", f"the rank of {name!r}"), f"the rank of {name!r}")
                shape = [cur.unpack("<Q", f"the shape of {name!r}") for _ in range(dims)]
                cur.unpack("<IQ", f"the type and offset of {name!r}")
                if any(n == 0 for n in shape) or math.prod(shape) > size * 8:  # 8 elements a byte: below 1-bit types
                    raise GGUFLayoutError(path.name, f"tensor {name!r} declares shape {shape}, more than a "
                                                     f"{size:,}-byte file holds")
            return {"version": version, "tensors": tensors, "metadata": entries}

