"""GGUF headers walked before gguf reads them: every declared count and length against the file's size."""

from __future__ import annotations

import re
import struct
import time
import tracemalloc

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from steering.engine.gguf import GGUFError, inspect_gguf
from steering.engine.gguf_layout import GGUFLayoutError, check_layout
from steering.pipeline.control_vectors import ControlVector
from steering.store.storage import StorageError


def _string(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def _header(entries: list[bytes], tensors: list[bytes] = ()) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(entries)) + b"".join(entries) + b"".join(tensors)


def _array(key: bytes, item_type: int, count: int) -> bytes:
    return _string(key) + struct.pack("<IIQ", 9, item_type, count)


@pytest.mark.parametrize("item_type", [0, 8, 12])  # uint8, string, float64
def test_a_gguf_array_of_two_to_the_forty_entries_is_refused_in_under_a_second_and_100_mb(tmp_path, item_type):
    """Issue 31: a 69-byte file declaring 2^40 entries grew past 4 GiB in gguf's reader. Each
    reader (the header walk, the control vector reader, the checkpoint inspector) now refuses it
    by the field's name, in bounded time and memory."""
    path = tmp_path / "hostile.gguf"
    path.write_bytes(_header([_array(b"tokenizer.ggml.tokens", item_type, 2**40)]))
    for read, error in ((check_layout, GGUFLayoutError), (ControlVector.read, StorageError), (inspect_gguf, GGUFError)):
        tracemalloc.start()
        start = time.perf_counter()
        with pytest.raises(error, match="'tokenizer.ggml.tokens'.*1,099,511,627,776"):
            read(path)
        seconds, (_, peak) = time.perf_counter() - start, tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert seconds < 1 and peak < 100 * 2**20, (read, seconds, peak)


@pytest.mark.parametrize("data, words", [
    (b"GGUF" + struct.pack("<IQQ", 3, 2**40, 0), "the tensor count"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 2**40), "the metadata count"),
    (b"GGUF" + struct.pack("<IQQ", 9, 0, 0), "version 9"),
    (b"GGML" + struct.pack("<IQQ", 3, 0, 0), "does not start with 'GGUF'"),
    (_header([_string(b"k") + struct.pack("<IQ", 8, 2**62)]), "the length of 'k'"),
    (_header([_string(b"k") + struct.pack("<IQ", 8, 1000)]), "needs 1,000 bytes"),
    (_header([_string(b"k") + struct.pack("<I", 77)]), "unknown type 77"),
    (_header([_array(b"k", 4, 1000)]), "the 1,000 entries of 'k'"),
    (_header([_array(b"k", 8, 1000)]), "the 1,000 entries of 'k'"),
    (_header([], [_string(b"w") + struct.pack("<I", 9)]), "the rank of 'w'"),
    (_header([], [_string(b"w") + struct.pack("<IQQIQ", 2, 2**40, 2**40, 0, 0)]), "declares shape"),
    (b"GGUF" + b"\0" * 10, "a GGUF header takes 24 (truncated or corrupt)"),
])
def test_each_gguf_header_field_is_checked_against_the_file(tmp_path, data, words):
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    with pytest.raises(GGUFLayoutError, match=re.escape(words)) as raised:
        check_layout(path)
    assert "\n" not in str(raised.value) and "bad.gguf" in str(raised.value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_corrupted_control_vector_is_read_or_refused_in_one_line(tmp_path, data):
    """Hypothesis: a valid control vector, then one field's bytes overwritten (any offset, any
    value, possibly truncated): the reader returns a vector or a StorageError, never another
    exception, a hang or a large allocation."""
    good = _control_vector_bytes(data.draw(st.sampled_from([4, 16, 128])), data.draw(st.lists(
        st.integers(1, 30), min_size=1, max_size=3, unique=True)))
    offset = data.draw(st.integers(0, len(good) - 1))
    patch = data.draw(st.binary(min_size=1, max_size=9) | st.sampled_from(
        [struct.pack("<Q", 2**40), struct.pack("<Q", 2**63 - 1), struct.pack("<I", 9), b"\xff" * 8]))
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(good))))
    bad = (good[:offset] + patch + good[offset + len(patch):])[:cut]
    path = tmp_path / "cv.gguf"
    path.write_bytes(bad)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        ControlVector.read(path)
    except StorageError as err:
        assert "\n" not in str(err) and len(str(err)) < 1000
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.perf_counter() - start < 2 and peak < 100 * 2**20


def test_the_header_walk_passes_a_file_gguf_wrote(tmp_path):
    path = tmp_path / "ok.gguf"
    path.write_bytes(_control_vector_bytes(128, [1, 5, 7]))
    assert check_layout(path) == {"version": 3, "tensors": 3, "metadata": 4}  # architecture, hint, count, method
    assert set(ControlVector.read(path).directions) == {1, 5, 7}


def _control_vector_bytes(width: int, blocks: list[int]) -> bytes:
    return ControlVector({b: torch.linspace(-1, 1, width) for b in blocks}, "llama", {"steerscope.method": "mean_diff"}).to_bytes()
