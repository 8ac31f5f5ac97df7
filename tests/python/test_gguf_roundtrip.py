"""GGUF interoperability with the PyPI `gguf` package (the reference, independent of our code).

(a) files written by gguf's GGUFWriter are read back by our reader (via tests/gguf-dump) exactly as gguf's
    GGUFReader sees them: every key, type and value bit for bit, every tensor's name, type, shape, offset and bytes;
(b) files written by our writer (gguf-dump write SPEC) are read by GGUFReader with the metadata and bytes of the spec;
(c) `smoe info` works on all of them and on llama.cpp's conversions in /work/shared/data/llamacpp-ref (skipped
    when absent), and fails cleanly on a damaged file.

Run with SMOE_BUILD_DIR pointing at a meson build directory.
"""
import json
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as QT  # noqa: E402
from gguf import GGUFValueType as VT  # noqa: E402

BUILD = os.environ.get("SMOE_BUILD_DIR")
pytestmark = pytest.mark.skipif(not BUILD, reason="SMOE_BUILD_DIR is not set")
REF_DIR = Path("/work/shared/data/llamacpp-ref/gguf")

NAMES = {VT.UINT8: "u8", VT.INT8: "i8", VT.UINT16: "u16", VT.INT16: "i16", VT.UINT32: "u32", VT.INT32: "i32",
         VT.FLOAT32: "f32", VT.BOOL: "bool", VT.STRING: "string", VT.ARRAY: "array", VT.UINT64: "u64",
         VT.INT64: "i64", VT.FLOAT64: "f64"}
# struct formats of gguf-dump's JSON values (floats are dumped as their IEEE bit patterns)
FMT = {"u8": "<B", "i8": "<b", "u16": "<H", "i16": "<h", "u32": "<I", "i32": "<i", "f32": "<I", "u64": "<Q",
       "i64": "<q", "f64": "<Q"}


def tool(name):
    p = Path(BUILD) / name
    if not p.exists():
        pytest.skip(f"{p} not built")
    return str(p)


def value_bytes(t, v):
    """gguf-dump JSON value -> the little-endian bytes of the value."""
    if t == "string":
        return bytes.fromhex(v)
    if t == "bool":
        return struct.pack("<?", v)
    return struct.pack(FMT[t], int(v))


def our_view(path):
    out = subprocess.run([tool("tests/gguf-dump"), "dump", str(path)], check=True, capture_output=True).stdout
    d = json.loads(out)
    kv = []
    for e in d["kv"]:
        t, v = e["type"], e["value"]
        if t != "array":
            kv.append((e["key"], t, None, value_bytes(t, v)))
        elif e["elem_type"] == "array":
            kv.append((e["key"], t, "array", bytes.fromhex(v["raw"])))
        else:
            kv.append((e["key"], t, e["elem_type"], [value_bytes(e["elem_type"], x) for x in v]))
    tensors = [(t["name"], t["type"], t["shape"], t["offset"], bytes.fromhex(t["data"])) for t in d["tensors"]]
    return {"alignment": d["alignment"], "data_offset": d["data_offset"], "kv": kv, "tensors": tensors}


def reader_view(path):
    r = gguf.GGUFReader(str(path))
    kv = []
    for name, f in r.fields.items():
        if name.startswith("GGUF."):
            continue  # the header, not metadata
        t = f.types[0]
        if t != VT.ARRAY:
            kv.append((name, NAMES[t], None, f.parts[-1].tobytes()))
        elif f.types[1] == VT.ARRAY:  # nested: the raw element bytes after (key, type, elem type, count)
            kv.append((name, "array", "array", b"".join(p.tobytes() for p in f.parts[5:])))
        else:
            kv.append((name, "array", NAMES[f.types[1]], [f.parts[i].tobytes() for i in f.data]))
    tensors = [(t.name, int(t.tensor_type), [int(x) for x in t.shape], int(t.data_offset) - r.data_offset,
                t.data.tobytes()) for t in r.tensors]
    return {"alignment": int(r.alignment), "data_offset": r.data_offset, "kv": kv, "tensors": tensors}


def assert_same(ours, theirs):
    assert ours["alignment"] == theirs["alignment"]
    assert ours["data_offset"] == theirs["data_offset"]
    assert [k[0] for k in ours["kv"]] == [k[0] for k in theirs["kv"]]
    for a, b in zip(ours["kv"], theirs["kv"]):
        assert a == b, a[0]
    assert [t[:4] for t in ours["tensors"]] == [t[:4] for t in theirs["tensors"]]
    for a, b in zip(ours["tensors"], theirs["tensors"]):
        assert a[4] == b[4], a[0]


def smoe_info(path, *args):
    return subprocess.run([tool("tools/smoe"), "info", *args, str(path)], capture_output=True, text=True)


# ---- (a) gguf.GGUFWriter -> our reader ----

def write_with_gguf(path, alignment):
    rng = np.random.default_rng(1234)
    w = gguf.GGUFWriter(str(path), arch="llama")
    if alignment:
        w.add_custom_alignment(alignment)
    w.add_uint8("t.u8", 255)
    w.add_int8("t.i8", -128)
    w.add_uint16("t.u16", 65535)
    w.add_int16("t.i16", -32768)
    w.add_uint32("t.u32", 4294967295)
    w.add_int32("t.i32", -2147483648)
    w.add_float32("t.f32", 1e-5)
    w.add_uint64("t.u64", 2**64 - 1)
    w.add_int64("t.i64", -2**63)
    w.add_float64("t.f64", float.fromhex("0x1.fffffffffffffp+1023"))
    w.add_bool("t.bool_t", True)
    w.add_bool("t.bool_f", False)
    w.add_string("t.str", "Mixtral ▁8x7B 日本語 \"quoted\"\n")
    w.add_string("t.str_empty", "")
    w.add_array("t.arr_str", ["<unk>", "<s>", "</s>", "", "▁the", "<0x0A>", "日本"])
    w.add_array("t.arr_i32", [3, 3, 3, 6, -1])
    w.add_array("t.arr_f32", [-1000.0, 0.0, 0.5, float("inf")])
    w.add_array("t.arr_bool", [True, False, True])
    for vt, vals in [(VT.UINT8, [0, 255]), (VT.INT8, [-128, 127]), (VT.UINT16, [1, 65535]),
                     (VT.INT16, [-32768, 5]), (VT.UINT32, [7, 2**32 - 1]), (VT.UINT64, [2**64 - 1, 0]),
                     (VT.INT64, [-2**63, 2**63 - 1]), (VT.FLOAT64, [0.1, -2.5e300])]:
        w.add_key_value(f"t.arr_{NAMES[vt]}", vals, VT.ARRAY, sub_type=vt)
    w.add_key_value("t.nested", [[1, 2], [3], ["a", "bc"]], VT.ARRAY, sub_type=VT.ARRAY)
    # tensors: numpy shape (rows, cols) is GGUF ne [cols, rows]
    f32 = rng.standard_normal((3, 5)).astype(np.float32)
    f16 = rng.standard_normal((7,)).astype(np.float16)
    q8 = gguf.quants.quantize(rng.standard_normal((4, 64)).astype(np.float32), QT.Q8_0)
    q4 = gguf.quants.quantize(rng.standard_normal((2, 3, 96)).astype(np.float32), QT.Q4_0)
    w.add_tensor("token_embd.weight", f32)
    w.add_tensor("blk.0.attn_norm.weight", f16)
    w.add_tensor("blk.0.attn_q.weight", q8, raw_dtype=QT.Q8_0)
    w.add_tensor("blk.0.ffn_up_exps.weight", q4, raw_dtype=QT.Q4_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"token_embd.weight": f32.tobytes(), "blk.0.attn_norm.weight": f16.tobytes(),
            "blk.0.attn_q.weight": q8.tobytes(), "blk.0.ffn_up_exps.weight": q4.tobytes()}


@pytest.mark.parametrize("alignment", [None, 64])
def test_gguf_writer_files_read_identically(tmp_path, alignment):
    path = tmp_path / "from-gguf-py.gguf"
    data = write_with_gguf(path, alignment)
    ours, theirs = our_view(path), reader_view(path)
    assert_same(ours, theirs)
    # and against the source values, not only the other reader
    assert ours["alignment"] == (alignment or 32)
    kv = {k[0]: k for k in ours["kv"]}
    assert kv["t.u64"][3] == struct.pack("<Q", 2**64 - 1)
    assert kv["t.f32"][3] == struct.pack("<f", 1e-5)
    assert kv["t.str"][3] == "Mixtral ▁8x7B 日本語 \"quoted\"\n".encode()
    assert kv["t.arr_str"][2] == "string" and kv["t.arr_str"][3][6] == "日本".encode()
    assert kv["t.arr_i64"][3] == [struct.pack("<q", -2**63), struct.pack("<q", 2**63 - 1)]
    assert kv["t.nested"][2] == "array"
    shapes = {t[0]: (t[1], t[2]) for t in ours["tensors"]}
    assert shapes["blk.0.attn_q.weight"] == (int(QT.Q8_0), [64, 4])
    assert shapes["blk.0.ffn_up_exps.weight"] == (int(QT.Q4_0), [96, 3, 2])
    assert shapes["blk.0.attn_norm.weight"] == (int(QT.F16), [7])
    for t in ours["tensors"]:
        assert t[4] == data[t[0]], t[0]
        assert t[3] % (alignment or 32) == 0
    r = smoe_info(path)
    assert r.returncode == 0, r.stderr
    assert "blk.0.ffn_up_exps.weight" in r.stdout and "t.arr_str" in r.stdout and "q4_0" in r.stdout


# ---- (b) our writer -> gguf.GGUFReader ----

def f32_bits(x):
    return str(struct.unpack("<I", struct.pack("<f", x))[0])


def f64_bits(x):
    return str(struct.unpack("<Q", struct.pack("<d", x))[0])


def make_spec(alignment):
    rng = np.random.default_rng(99)
    kv = [
        {"key": "general.architecture", "type": "string", "value": b"llama".hex()},
        {"key": "s.u8", "type": "u8", "value": "255"},
        {"key": "s.i8", "type": "i8", "value": "-128"},
        {"key": "s.u16", "type": "u16", "value": "65535"},
        {"key": "s.i16", "type": "i16", "value": "-32768"},
        {"key": "s.u32", "type": "u32", "value": "4294967295"},
        {"key": "s.i32", "type": "i32", "value": "-2147483648"},
        {"key": "s.f32", "type": "f32", "value": f32_bits(-0.1)},
        {"key": "s.bool", "type": "bool", "value": True},
        {"key": "s.str", "type": "string", "value": "▁Hello, 世界\t".encode().hex()},
        {"key": "s.u64", "type": "u64", "value": str(2**64 - 1)},
        {"key": "s.i64", "type": "i64", "value": str(-2**63)},
        {"key": "s.f64", "type": "f64", "value": f64_bits(1.0 / 3.0)},
        {"key": "a.str", "type": "array", "elem_type": "string",
         "value": [s.encode().hex() for s in ["<unk>", "<s>", "</s>", "", "▁a", "<0xFF>"]]},
        {"key": "a.f32", "type": "array", "elem_type": "f32", "value": [f32_bits(x) for x in [0.0, -1000.0, 1.5]]},
        {"key": "a.i32", "type": "array", "elem_type": "i32", "value": ["1", "-2", "3"]},
        {"key": "a.bool", "type": "array", "elem_type": "bool", "value": [True, False]},
        {"key": "a.u64", "type": "array", "elem_type": "u64", "value": [str(2**64 - 1), "0"]},
        {"key": "a.i16", "type": "array", "elem_type": "i16", "value": ["-32768"]},
        {"key": "a.f64", "type": "array", "elem_type": "f64", "value": [f64_bits(2.5e-300)]},
    ]
    if alignment:
        kv.insert(1, {"key": "general.alignment", "type": "u32", "value": str(alignment)})
    tensors = []
    for name, qt, shape in [("f32.odd", QT.F32, [3]), ("f16", QT.F16, [5, 3]), ("q8_0", QT.Q8_0, [64, 2]),
                            ("q4_0", QT.Q4_0, [32, 3, 2]), ("q4_k", QT.Q4_K, [256, 2]), ("empty", QT.F32, [0, 4]),
                            ("i8", QT.I8, [7, 1, 1, 1])]:
        block, size = gguf.GGML_QUANT_SIZES[qt]
        nbytes = int(np.prod(shape)) // block * size
        tensors.append({"name": name, "type": int(qt), "shape": shape,
                        "data": rng.integers(0, 256, nbytes, dtype=np.uint8).tobytes().hex()})
    return {"kv": kv, "tensors": tensors}


@pytest.mark.parametrize("alignment", [None, 128])
def test_our_files_read_by_gguf_reader(tmp_path, alignment):
    spec = make_spec(alignment)
    spec_path, path = tmp_path / "spec.json", tmp_path / "ours.gguf"
    spec_path.write_text(json.dumps(spec))
    r = subprocess.run([tool("tests/gguf-dump"), "write", str(spec_path), str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert not list(tmp_path.glob("ours.gguf.tmp.*"))  # the temp file was renamed
    theirs = reader_view(path)
    expected_kv = []
    for e in spec["kv"]:
        if e["type"] == "array":
            expected_kv.append((e["key"], "array", e["elem_type"], [value_bytes(e["elem_type"], x) for x in e["value"]]))
        else:
            expected_kv.append((e["key"], e["type"], None, value_bytes(e["type"], e["value"])))
    assert theirs["kv"] == expected_kv
    assert theirs["alignment"] == (alignment or 32)
    assert [(t[0], t[1], t[2], t[4]) for t in theirs["tensors"]] == \
        [(t["name"], t["type"], t["shape"], bytes.fromhex(t["data"])) for t in spec["tensors"]]
    for t in theirs["tensors"]:
        assert t[3] % (alignment or 32) == 0
    # gguf's own high-level accessors agree too
    rd = gguf.GGUFReader(str(path))
    assert rd.get_field("a.str").contents() == ["<unk>", "<s>", "</s>", "", "▁a", "<0xFF>"]
    assert rd.get_field("s.str").contents() == "▁Hello, 世界\t"
    assert rd.get_field("s.i64").contents() == -2**63
    # and our own reader agrees with theirs
    assert_same(our_view(path), theirs)
    r = smoe_info(path)
    assert r.returncode == 0, r.stderr
    assert "q4_k" in r.stdout and "a.str" in r.stdout


# ---- (c) smoe info ----

def test_info_json_and_errors(tmp_path):
    path = tmp_path / "x.gguf"
    write_with_gguf(path, None)
    r = smoe_info(path, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["version"] == 3 and len(d["tensors"]) == 4
    assert {k["key"] for k in d["metadata"]} >= {"general.architecture", "t.arr_str", "t.nested"}
    assert smoe_info(path, "-h").returncode == 0
    assert smoe_info(path, "--bogus").returncode == 2
    # a damaged copy: truncated inside the tensor data
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(path.read_bytes()[:-100])
    r = smoe_info(bad)
    assert r.returncode == 1
    assert "corrupt file" in r.stderr and "past end of file" in r.stderr and "bad.gguf" in r.stderr


REF_FILES = sorted(REF_DIR.glob("*.gguf")) if REF_DIR.is_dir() else []


@pytest.mark.skipif(not REF_FILES, reason=f"llama.cpp reference files absent ({REF_DIR})")
@pytest.mark.parametrize("path", REF_FILES, ids=[p.name for p in REF_FILES])
def test_llamacpp_files(path):
    assert_same(our_view(path), reader_view(path))
    r = smoe_info(path)
    assert r.returncode == 0, r.stderr
    assert "tokenizer.ggml.tokens" in r.stdout and "blk.0.ffn_gate_exps.weight" in r.stdout
