"""A small reader and writer of the safetensors format in plain numpy.

Independent of mesalab (Debian has no Python safetensors package): it reads any checkpoint
mesalab writes, and mesalab reads what it writes. The format:

    8 bytes   little-endian unsigned 64-bit N
    N bytes   UTF-8 JSON header {name: {"dtype", "shape", "data_offsets": [begin, end]}, ...,
              "__metadata__": {str: str}} (optional metadata)
    rest      the data buffer; offsets are relative to its start, data is little-endian and
              row-major (C order)
"""

import json
import os
import struct

import numpy as np

# safetensors dtype names <-> numpy dtypes (little-endian).
DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES = {dtype.str: name for name, dtype in DTYPES.items()}


def load(path):
    """Returns (tensors, metadata): {name: numpy array} in file order and {str: str}.

    The arrays are read-only views of one bytes object holding the data buffer (no copy per
    tensor); np.array(t) makes a writable copy.
    """
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte header length")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if 8 + header_len > len(blob):
        raise ValueError(f"{path}: header length {header_len} exceeds the file")
    header = json.loads(blob[8 : 8 + header_len].decode("utf-8"))
    data = memoryview(blob)[8 + header_len :]
    metadata = header.pop("__metadata__", {}) or {}
    tensors = {}
    ends = []
    for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
        dtype = DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= begin <= end <= len(data) or end - begin != count * dtype.itemsize:
            raise ValueError(f"{path}: tensor {name!r} has bad data_offsets {begin, end}")
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape)
        ends.append((begin, end))
    position = 0
    for begin, end in ends:
        if begin != position:
            raise ValueError(f"{path}: the tensors do not tile the data buffer")
        position = end
    if position != len(data):
        raise ValueError(f"{path}: {len(data) - position} bytes after the last tensor")
    return tensors, metadata


def save(path, tensors, metadata=None):
    """Writes {name: array} (in the dict's order) with optional {str: str} metadata.

    Written to a temporary file in the same directory and renamed, so a reader never sees a
    partial file.
    """
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks = []
    offset = 0
    for name, array in tensors.items():
        little_endian = np.asarray(array).dtype.newbyteorder("<")
        name_of_dtype = _NAMES.get(little_endian.str)
        if name_of_dtype is None:
            raise ValueError(f"tensor {name!r}: dtype {array.dtype} has no safetensors name")
        # (np.ascontiguousarray would turn a 0-d array into a 1-d one.)
        array = np.asarray(array, dtype=little_endian, order="C")
        raw = array.tobytes()
        header[name] = {
            "dtype": name_of_dtype,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # The data buffer starts 8-byte aligned, as the reference implementation pads it.
    text += b" " * (-len(text) % 8)
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)
    os.replace(temporary, path)
