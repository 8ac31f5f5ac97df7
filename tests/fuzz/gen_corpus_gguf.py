"""Writes the seed corpus of fuzz-gguf into tests/fuzz/corpus/gguf/ (deterministic; run with the venv's python).

Valid files come from the `gguf` package's GGUFWriter; broken ones are built here byte by byte from the spec.
Keep it small: libFuzzer mutates these, it does not need big inputs.
"""
import struct
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "corpus" / "gguf")
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(7)


def with_writer(name, fill, alignment=None):
    path = out / name
    w = gguf.GGUFWriter(str(path), arch="llama")
    if alignment:
        w.add_custom_alignment(alignment)
    fill(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


def all_types(w):
    w.add_uint8("u8", 1), w.add_int8("i8", -1), w.add_uint16("u16", 2), w.add_int16("i16", -2)
    w.add_uint32("u32", 3), w.add_int32("i32", -3), w.add_float32("f32", 0.5), w.add_bool("b", True)
    w.add_string("s", "hi"), w.add_uint64("u64", 4), w.add_int64("i64", -4), w.add_float64("f64", 0.25)
    w.add_array("tokens", ["<unk>", "<s>", "</s>", "a"])
    w.add_array("scores", [0.0, -1.0])
    w.add_key_value("types", [1, 2], VT.ARRAY, sub_type=VT.INT32)
    w.add_key_value("nested", [[1], ["x"]], VT.ARRAY, sub_type=VT.ARRAY)


def tensors(w):
    w.add_uint32("llama.block_count", 1)
    w.add_tensor("f32", rng.standard_normal((2, 3)).astype(np.float32))
    w.add_tensor("f16", rng.standard_normal((5,)).astype(np.float16))
    w.add_tensor("q8", gguf.quants.quantize(rng.standard_normal((1, 32)).astype(np.float32), QT.Q8_0),
                 raw_dtype=QT.Q8_0)
    w.add_tensor("q4", gguf.quants.quantize(rng.standard_normal((2, 32)).astype(np.float32), QT.Q4_0),
                 raw_dtype=QT.Q4_0)


valid = with_writer("valid-all-types.gguf", all_types)
tens = with_writer("valid-tensors.gguf", tensors)
with_writer("valid-align64.gguf", tensors, alignment=64)


def header(version, n_t, n_kv):
    return b"GGUF" + struct.pack("<IQQ", version, n_t, n_kv)


def gstr(s):
    return struct.pack("<Q", len(s)) + s


def tinfo(name, ne, typ, off):
    return gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne) + \
        struct.pack("<IQ", typ, off)


def pad(b, a=32):
    return b + b"\0" * (-len(b) % a)


broken = {
    "truncated-kv.gguf": valid[: len(valid) // 2],
    "truncated-data.gguf": tens[:-40],
    "v1.gguf": header(1, 0, 0),
    "v2-empty.gguf": header(2, 0, 0),
    "huge-count.gguf": header(3, 1 << 62, 1 << 62),
    "huge-string.gguf": header(3, 0, 1) + struct.pack("<Q", 1 << 60) + b"k" * 8,
    "bad-type.gguf": header(3, 0, 1) + gstr(b"k") + struct.pack("<I", 77) + b"\0" * 8,
    "overlap.gguf": pad(header(3, 2, 0) + tinfo(b"a", [16], 0, 0) + tinfo(b"b", [16], 0, 32)) + b"\0" * 128,
    "misaligned.gguf": pad(header(3, 1, 0) + tinfo(b"a", [8], 0, 4)) + b"\0" * 64,
    "dup-names.gguf": pad(header(3, 2, 0) + tinfo(b"a", [8], 0, 0) + tinfo(b"a", [8], 0, 32)) + b"\0" * 64,
    "dims-overflow.gguf": pad(header(3, 1, 0) + tinfo(b"a", [1 << 40, 1 << 40, 1 << 20], 0, 0)) + b"\0" * 32,
    "bad-row.gguf": pad(header(3, 1, 0) + tinfo(b"a", [33], int(QT.Q4_0), 0)) + b"\0" * 64,
}
for name, data in broken.items():
    (out / name).write_bytes(data)
print(f"{len(broken) + 3} files, {sum(p.stat().st_size for p in out.iterdir())} bytes in {out}")
