"""A TensorFlow-free reader for TF "V2" checkpoints (``.index`` + ``.data-*`` shards).

The musicnn wheel ships its weights as TF1 checkpoints. Reading them needs no TensorFlow: the
``.index`` file is a LevelDB-style SSTable whose keys are tensor names and whose values are
serialised ``BundleEntryProto`` messages (dtype, shape, shard, offset, size); the raw tensor
bytes live in the data shard at that offset. Only uncompressed tables and the dtypes musicnn
uses are supported; anything else raises :class:`~mirkit.errors.CheckpointError`.

Format facts: tensorflow/core/util/tensor_bundle (BundleEntryProto) and the LevelDB table
format (footer = two block handles + magic 0xdb4775248b80fb57).
"""

from __future__ import annotations

import glob
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirkit.errors import CheckpointError

_MAGIC = 0xDB4775248B80FB57
_FOOTER_BYTES = 48
# tensorflow/core/framework/types.proto
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 10: np.bool_, 19: np.float16}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointError("truncated varint in checkpoint index")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """Decode one protobuf message into ``(field_number, value)`` pairs (wire types 0, 1, 2, 5)."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            fields.append((number, value))
        elif wire == 1:
            fields.append((number, struct.unpack_from("<Q", buf, pos)[0]))
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            fields.append((number, buf[pos : pos + length]))
            pos += length
        elif wire == 5:
            fields.append((number, struct.unpack_from("<I", buf, pos)[0]))
            pos += 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire} in checkpoint index")
    return fields


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives in the data shard."""

    name: str
    dtype: type
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int


def _parse_entry(name: str, value: bytes) -> TensorEntry | None:
    dtype_id, shape, shard, offset, size = 0, [], 0, 0, 0
    for number, field in _proto_fields(value):
        if number == 1:
            dtype_id = int(field)  # type: ignore[arg-type]
        elif number == 2:
            for dim_number, dim in _proto_fields(field):  # type: ignore[arg-type]
                if dim_number == 2:
                    size_fields = [v for n, v in _proto_fields(dim) if n == 1]  # type: ignore[arg-type]
                    shape.append(int(size_fields[0]) if size_fields else 0)  # type: ignore[arg-type]
        elif number == 3:
            shard = int(field)  # type: ignore[arg-type]
        elif number == 4:
            offset = int(field)  # type: ignore[arg-type]
        elif number == 5:
            size = int(field)  # type: ignore[arg-type]
    if dtype_id not in _DTYPES:
        return None  # e.g. strings or resource handles: nothing a model port needs
    return TensorEntry(name, _DTYPES[dtype_id], tuple(shape), shard, offset, size)


def _block_entries(data: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    block = data[offset : offset + size]
    if offset + size + 5 > len(data):
        raise CheckpointError("checkpoint index block runs past the end of the file")
    if data[offset + size] != 0:
        raise CheckpointError("compressed checkpoint index blocks are not supported")
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * num_restarts
    entries: list[tuple[bytes, bytes]] = []
    key = b""
    pos = 0
    while pos < end:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


def read_index(prefix: str | Path) -> dict[str, TensorEntry]:
    """Parse ``<prefix>.index`` into tensor entries keyed by variable name."""
    index_path = Path(f"{prefix}.index")
    try:
        data = index_path.read_bytes()
    except OSError as exc:
        raise CheckpointError(
            f"cannot read TF checkpoint index {str(index_path)!r}: {exc}. "
            "Expected the prefix of a TF V2 checkpoint (files <prefix>.index and <prefix>.data-*)."
        ) from exc
    if len(data) < _FOOTER_BYTES or struct.unpack_from("<Q", data, len(data) - 8)[0] != _MAGIC:
        raise CheckpointError(f"{str(index_path)!r} is not a TF V2 checkpoint index (bad magic number)")
    footer = data[-_FOOTER_BYTES:]
    _, pos = _varint(footer, 0)  # metaindex offset
    _, pos = _varint(footer, pos)  # metaindex size
    index_offset, pos = _varint(footer, pos)
    index_size, _ = _varint(footer, pos)
    entries: dict[str, TensorEntry] = {}
    for _, handle in _block_entries(data, index_offset, index_size):
        block_offset, pos = _varint(handle, 0)
        block_size, _ = _varint(handle, pos)
        for key, value in _block_entries(data, block_offset, block_size):
            if not key:
                continue  # the empty key holds the BundleHeaderProto
            entry = _parse_entry(key.decode("utf-8"), value)
            if entry is not None:
                entries[entry.name] = entry
    return entries


def _is_optimizer_state(name: str) -> bool:
    return name.endswith(("/Adam", "/Adam_1", "/Momentum")) or name in ("beta1_power", "beta2_power", "global_step")


def read_checkpoint(prefix: str | Path, *, skip_optimizer_slots: bool = True) -> dict[str, np.ndarray]:
    """Read every tensor of a TF V2 checkpoint into numpy arrays.

    Args:
        prefix: checkpoint prefix (``<prefix>.index`` must exist).
        skip_optimizer_slots: drop Adam/Momentum slot variables and step counters, which are
            not model weights.

    Returns:
        ``{variable_name: array}`` in the stored dtype and shape.
    """
    entries = read_index(prefix)
    arrays: dict[str, np.ndarray] = {}
    shards: dict[int, bytes] = {}
    for name, entry in sorted(entries.items()):
        if skip_optimizer_slots and _is_optimizer_state(name):
            continue
        if entry.shard not in shards:
            shard_files = sorted(glob.glob(glob.escape(str(prefix)) + f".data-{entry.shard:05d}-of-*"))
            if not shard_files:
                raise CheckpointError(f"data shard {entry.shard} of checkpoint {str(prefix)!r} is missing")
            shards[entry.shard] = Path(shard_files[0]).read_bytes()
        raw = shards[entry.shard][entry.offset : entry.offset + entry.size]
        count = int(np.prod(entry.shape)) if entry.shape else 1
        if len(raw) != count * np.dtype(entry.dtype).itemsize:
            raise CheckpointError(
                f"tensor {name!r} in {str(prefix)!r}: expected {count} values of {np.dtype(entry.dtype).name} "
                f"({count * np.dtype(entry.dtype).itemsize} bytes) but the shard holds {len(raw)} bytes"
            )
        arrays[name] = np.frombuffer(raw, dtype=entry.dtype).reshape(entry.shape).copy()
    return arrays
