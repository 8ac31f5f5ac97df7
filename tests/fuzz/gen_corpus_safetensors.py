"""Writes the seed corpus of fuzz-safetensors into tests/fuzz/corpus/safetensors/ (deterministic; run with the
venv's python). Valid files come from the PyPI `safetensors` package; broken ones are built here byte by byte.
Keep it small: libFuzzer mutates these, it does not need big inputs.
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save

out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "corpus" / "safetensors")
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(7)


def raw(header, data=b""):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


(out / "valid.safetensors").write_bytes(save({
    "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((4, 8)).astype(np.float32),
    "model.norm.weight": rng.standard_normal(8).astype(np.float16),
    "scalar": np.array(3, dtype=np.int64),
}, metadata={"format": "pt"}))
(out / "bf16.safetensors").write_bytes(raw(
    {"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}, "__metadata__": {"format": "pt"}}, bytes(8)))
(out / "empty-tensor.safetensors").write_bytes(raw({"e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]}}))
(out / "overlap.safetensors").write_bytes(raw({
    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
    "b": {"dtype": "F16", "shape": [2], "data_offsets": [6, 10]}}, bytes(10)))
(out / "out-of-range.safetensors").write_bytes(raw({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
                                                   bytes(8)))
(out / "wrong-size.safetensors").write_bytes(raw({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
                                                 bytes(8)))
h = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'
(out / "duplicate.safetensors").write_bytes(struct.pack("<Q", len(h)) + h + bytes(8))
(out / "header-too-long.safetensors").write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
(out / "huge-shape.safetensors").write_bytes(raw(
    {"a": {"dtype": "U64", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 0]}}))
