"""Arrow arrays <-> raw bytes: the zero-copy building blocks of the wire encoders.

Values are built as numpy byte matrices (fixed width) or (offsets, data) pairs and wrapped as Arrow binary
arrays without copying; `compact` turns a matrix plus a keep-mask into variable-width values.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def np_values(arr: pa.Array, fill) -> np.ndarray:
    """Values as numpy, nulls replaced by `fill` (their bytes are dropped later anyway)."""
    if arr.null_count:
        arr = arr.fill_null(fill)
    return arr.to_numpy(zero_copy_only=False)


def validity_of(arr: pa.Array) -> pa.Buffer | None:
    """A fresh offset-0 validity bitmap for `arr` (None when it has no nulls)."""
    if not arr.null_count:
        return None
    return pc.is_valid(arr).buffers()[1]


def fixed_width(matrix: np.ndarray, nulls_from: pa.Array | None = None) -> pa.Array:
    """An (n, w) uint8 matrix -> binary array of n w-byte values (zero-copy), nulls where `nulls_from` has them."""
    n, w = matrix.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    validity = validity_of(nulls_from) if nulls_from is not None else None
    return pa.Array.from_buffers(pa.binary(), n, [validity, pa.py_buffer(offsets),
                                                  pa.py_buffer(np.ascontiguousarray(matrix))])


def binary_parts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets relative to the first value, data bytes) of a binary/string array, zero-copy."""
    arr = arr.cast(pa.large_binary()) if arr.type in (pa.large_string(), pa.large_binary()) else arr
    if pa.types.is_fixed_size_binary(arr.type) or pa.types.is_binary_view(arr.type) \
            or pa.types.is_string_view(arr.type):
        arr = arr.cast(pa.binary())
    bufs = arr.buffers()
    dtype = np.int64 if arr.type in (pa.large_binary(), pa.large_string()) else np.int32
    offsets = np.frombuffer(bufs[1], dtype=dtype, count=len(arr) + 1, offset=arr.offset * dtype().itemsize)
    start, end = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(bufs[2], dtype=np.uint8, count=end - start, offset=start) if bufs[2] is not None and \
        end > start else np.zeros(0, np.uint8)
    return offsets - offsets[0], data


def compact(matrix: np.ndarray, keep: np.ndarray, nulls_from: pa.Array | None = None) -> pa.Array:
    """Row i of the binary result = the bytes of matrix[i] where keep[i] (row-major boolean indexing
    concatenates exactly those, in order)."""
    lengths = keep.sum(axis=1)
    offsets = np.zeros(len(matrix) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = matrix[keep]
    offsets_type = (pa.large_binary(), np.int64) if len(data) >= 2**31 else (pa.binary(), np.int32)
    validity = validity_of(nulls_from) if nulls_from is not None else None
    return pa.Array.from_buffers(offsets_type[0], len(matrix), [validity, pa.py_buffer(offsets.astype(offsets_type[1])),
                                                                pa.py_buffer(data)])


def python_each(arr: pa.Array, fmt) -> pa.Array:
    """The slow path: one Python call per non-null value (rare types only)."""
    if isinstance(arr.type, pa.BaseExtensionType):
        arr = arr.storage
    return pa.array([None if v is None else fmt(v) for v in arr.to_pylist()], pa.string())


def patch(text: pa.Array, mask: np.ndarray, values: list[str]) -> pa.Array:
    """`text` with the positions in `mask` replaced by `values` (in order)."""
    if not mask.any():
        return text
    py = text.to_pylist()
    for i, v in zip(np.flatnonzero(mask), values, strict=True):
        py[i] = v
    return pa.array(py, pa.string())


def overwrite_at(binary: pa.Array, position: int, values: np.ndarray) -> pa.Array:
    """`binary` (a binary array) with bytes position..position+k of each non-null value replaced by that row
    of `values` (an (n, k) uint8 matrix): a field of a binary wire form, set for every value at once."""
    offsets = np.frombuffer(binary.buffers()[1], np.int32, count=len(binary) + 1, offset=4 * binary.offset)
    data = np.frombuffer(binary.buffers()[2], np.uint8).copy()
    valid = np.asarray(binary.is_valid()) if binary.null_count else np.ones(len(binary), bool)
    starts = offsets[:-1][valid] + position
    rows = values[valid]
    for k in range(values.shape[1]):
        data[starts + k] = rows[:, k]
    return pa.Array.from_buffers(pa.binary(), len(binary), [binary.buffers()[0], binary.buffers()[1],
                                                           pa.py_buffer(data.tobytes())], offset=binary.offset,
                                 null_count=binary.null_count)
