"""`smoe quantize` against independent references.

(a) Synthetic Mixtral-shaped GGUF files written by the PyPI gguf package (F32, F16 and BF16 sources; 8 experts
    with rows of 256, and a 4-expert model with rows of 80 and 96 that exercise the fallbacks): for every --type,
    the gguf package reads our output; names, shapes and metadata are carried over; general.file_type and
    general.quantization_version are set; each tensor's type is what llama-quantize's rules (re-stated in Python
    below from llama.cpp's llama_tensor_get_type) give; the dequantized values (gguf.quants) are within a
    per-type relative RMSE bound of the source.
(b) llama.cpp's own files (skipped when /work/shared/data/llamacpp-ref is absent): quantizing its tiny F32 (and F16)
    conversion gives exactly the tensor types of llama-quantize's Q4_K_M / Q4_0 / Q8_0 files, and no larger total
    squared error than those files have against the same source.
(c) --stats prints a line per tensor whose RMSE matches the one computed here from the output file.
(d) Failures leave no output file: a missing input, an unwritable output folder, NaN in a weight, a quantized
    source without --allow-requantize; an unknown type is a usage error.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as QT  # noqa: E402
from gguf import quants  # noqa: E402

BUILD = os.environ.get("SMOE_BUILD_DIR")
pytestmark = pytest.mark.skipif(not BUILD, reason="SMOE_BUILD_DIR is not set")
REF_DIR = Path("/work/shared/data/llamacpp-ref/gguf")

FTYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "q4_k": 14, "q4_k_m": 15,
         "q5_k": 16, "q5_k_m": 17, "q6_k": 18, "bf16": 32, "auto": 15}
# relative RMSE (||x - q|| / ||x||) bounds per output type on normal weights (measured values are ~10-20% lower)
REL_BOUND = {QT.F32: 0.0, QT.F16: 6e-4, QT.BF16: 4e-3, QT.Q8_0: 6e-3, QT.Q6_K: 0.02, QT.Q5_1: 0.04, QT.Q5_K: 0.04,
             QT.Q5_0: 0.047, QT.Q4_1: 0.08, QT.Q4_K: 0.08, QT.Q4_0: 0.093}


def smoe():
    p = Path(BUILD) / "tools" / "smoe"
    if not p.exists():
        pytest.skip(f"{p} not built")
    return str(p)


def run_quantize(src, dst, qtype, *extra, check=True):
    r = subprocess.run([smoe(), "quantize", str(src), str(dst), "--type", qtype, "--quiet", *extra],
                       capture_output=True, text=True)
    if check:
        assert r.returncode == 0, r.stderr
    return r


# ---- synthetic models ------------------------------------------------------------------------------------------

def write_model(path, n_embd, n_ff, n_layer, n_expert, n_vocab, dtype, seed=0, nan_in=None):
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(n_layer)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_expert_count(n_expert)
    w.add_expert_used_count(2)
    w.add_context_length(4096)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(0)
    w.add_string("smoe.test.marker", "carried over")
    n_kv = n_embd // 2
    src = {}

    def weight(shape, scale=0.02):  # numpy shape: (…, rows, row length)
        x = (rng.standard_normal(shape) * scale).astype(np.float32)
        flat = x.reshape(-1)
        idx = rng.choice(flat.size, max(1, flat.size // 2000), replace=False)
        flat[idx] *= 8  # a few outliers
        return x

    def add(name, x, keep_f32=False):
        if nan_in == name:
            x = x.copy()
            x.reshape(-1)[x.size // 2] = np.nan
        src[name] = x.astype(np.float32)
        if keep_f32 or dtype == "f32":
            w.add_tensor(name, x.astype(np.float32))
        elif dtype == "f16":
            w.add_tensor(name, x.astype(np.float16))
        else:  # bf16 bytes via the gguf package's own converter
            raw = quants.quantize(x.astype(np.float32), QT.BF16)
            w.add_tensor(name, raw, raw_dtype=QT.BF16)
            src[name] = quants.dequantize(raw, QT.BF16).reshape(x.shape)

    add("token_embd.weight", weight((n_vocab, n_embd), 1.0))
    for i in range(n_layer):
        add(f"blk.{i}.attn_norm.weight", 1 + 0.1 * rng.standard_normal(n_embd).astype(np.float32), keep_f32=True)
        add(f"blk.{i}.attn_q.weight", weight((n_embd, n_embd)))
        add(f"blk.{i}.attn_k.weight", weight((n_kv, n_embd)))
        add(f"blk.{i}.attn_v.weight", weight((n_kv, n_embd)))
        add(f"blk.{i}.attn_output.weight", weight((n_embd, n_embd)))
        add(f"blk.{i}.ffn_norm.weight", 1 + 0.1 * rng.standard_normal(n_embd).astype(np.float32), keep_f32=True)
        add(f"blk.{i}.ffn_gate_inp.weight", weight((n_expert, n_embd)), keep_f32=True)
        add(f"blk.{i}.ffn_gate_exps.weight", weight((n_expert, n_ff, n_embd)))
        add(f"blk.{i}.ffn_up_exps.weight", weight((n_expert, n_ff, n_embd)))
        add(f"blk.{i}.ffn_down_exps.weight", weight((n_expert, n_embd, n_ff)))
    add("output_norm.weight", 1 + 0.1 * rng.standard_normal(n_embd).astype(np.float32), keep_f32=True)
    add("output.weight", weight((n_vocab, n_embd)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return src


# ---- llama-quantize's rules, re-stated (llama.cpp src/llama-quant.cpp, llama_tensor_get_type) ------------------

BASE = {"q4_0": QT.Q4_0, "q4_1": QT.Q4_1, "q5_0": QT.Q5_0, "q5_1": QT.Q5_1, "q8_0": QT.Q8_0, "q4_k_m": QT.Q4_K,
        "q5_k_m": QT.Q5_K, "q4_k": QT.Q4_K, "q5_k": QT.Q5_K, "q6_k": QT.Q6_K, "f16": QT.F16, "bf16": QT.BF16,
        "f32": QT.F32}


def use_more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def block_of(t):
    return gguf.GGML_QUANT_SIZES[t][0]


def expected_type(name, shape, ftype, n_layer, n_expert):
    """shape: GGUF order (ne[0] first)."""
    if len(shape) < 2 or name.endswith("_norm.weight") or "ffn_gate_inp" in name:
        return QT.F32
    ne0 = shape[0]
    if ftype in ("f32", "f16", "bf16"):
        return BASE[ftype]
    if ftype == "auto":
        part = name.split(".", 2)[2] if name.startswith("blk.") else name
        if "_exps" in part:
            t = QT.Q4_K if ne0 % 256 == 0 else QT.Q4_0
        elif part in ("attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight"):
            t = QT.Q8_0
        elif name == "token_embd.weight":
            t = QT.Q4_K
        elif name == "output.weight":
            t = QT.Q6_K
        else:
            return QT.F32
    elif ftype in ("q4_k", "q5_k", "q6_k"):
        t = BASE[ftype]
    else:
        base = BASE[ftype]
        k_mix = ftype in ("q4_k_m", "q5_k_m")
        layer = int(name.split(".")[1]) if name.startswith("blk.") else -1
        t = base
        if name == "output.weight":
            t = QT.Q8_0 if ne0 % 256 or base == QT.Q8_0 else QT.Q6_K
        elif "attn_v.weight" in name:
            if k_mix and use_more_bits(layer, n_layer):
                t = QT.Q6_K
            if n_expert == 8:
                t = QT.Q8_0
        elif "attn_k.weight" in name:
            t = QT.Q8_0 if n_expert == 8 else base
        elif "ffn_down" in name:
            t = QT.Q6_K if k_mix and use_more_bits(layer, n_layer) else base
        elif "attn_output.weight" in name and n_expert == 8 and ftype == "q4_k_m":
            t = QT.Q5_K
    if ne0 % block_of(t):
        t = {QT.Q4_K: QT.Q5_0, QT.Q5_K: QT.Q5_1, QT.Q6_K: QT.Q8_0}.get(t, t)
        if ne0 % block_of(t):
            t = QT.F16
    return t


def tensor_values(t):
    data = np.array(t.data)
    if t.tensor_type == QT.F32:
        return data.astype(np.float32)
    if t.tensor_type == QT.F16:
        return data.astype(np.float32)
    return quants.dequantize(data.view(np.uint8), t.tensor_type)


def field(r, key):
    return r.fields[key].contents()


SYNTH = {  # name: (n_embd, n_ff, n_layer, n_expert, n_vocab)
    "moe8": (256, 256, 4, 8, 512),
    "odd": (80, 96, 2, 4, 64),  # rows of 80 (no block divides them but f16's) and 96 (32 does, 256 does not)
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    out = {}
    for key, dims in SYNTH.items():
        for dtype in ("f32", "f16", "bf16"):
            path = d / f"{key}-{dtype}.gguf"
            out[(key, dtype)] = (path, write_model(path, *dims, dtype, seed=len(key)), dims)
    return out


CASES = [("moe8", "f32", t) for t in ("q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k", "q4_k_m",
                                      "q5_k_m", "f16", "bf16", "f32", "auto")]
CASES += [("moe8", "f16", "q4_k_m"), ("moe8", "bf16", "q8_0"), ("moe8", "bf16", "f16")]
CASES += [("odd", "f32", t) for t in ("q4_k_m", "q5_k_m", "q4_0", "q6_k", "auto")]


@pytest.mark.parametrize("model,dtype,qtype", CASES)
def test_quantize_synthetic(models, tmp_path, model, dtype, qtype):
    path, src, (n_embd, n_ff, n_layer, n_expert, n_vocab) = models[(model, dtype)]
    out = tmp_path / "out.gguf"
    run_quantize(path, out, qtype)
    r = gguf.GGUFReader(str(out))
    r_in = gguf.GGUFReader(str(path))
    assert field(r, "general.file_type") == FTYPE[qtype]
    assert field(r, "general.quantization_version") == 2
    assert field(r, "smoe.test.marker") == "carried over"
    assert field(r, "llama.expert_count") == n_expert
    assert [t.name for t in r.tensors] == [t.name for t in r_in.tensors]
    for t, t_in in zip(r.tensors, r_in.tensors):
        shape = [int(x) for x in t.shape]
        assert shape == [int(x) for x in t_in.shape], t.name
        want = expected_type(t.name, shape, qtype, n_layer, n_expert)
        assert t.tensor_type == want, f"{t.name}: {t.tensor_type.name}, expected {want.name}"
        x = src[t.name].reshape(-1).astype(np.float64)
        y = tensor_values(t).reshape(-1).astype(np.float64)
        assert np.all(np.isfinite(y)), t.name
        rel = np.sqrt(np.sum((x - y) ** 2) / np.sum(x ** 2))
        if t.tensor_type == t_in.tensor_type:
            assert rel == 0, t.name  # copied
        else:
            assert rel <= REL_BOUND[t.tensor_type], f"{t.name} ({t.tensor_type.name}): relative rmse {rel:.3e}"


def test_stats_output(models, tmp_path):
    path, src, _ = models[("moe8", "f32")]
    out = tmp_path / "out.gguf"
    r = run_quantize(path, out, "q4_k_m", "--stats")
    lines = r.stdout.strip().splitlines()
    reader = gguf.GGUFReader(str(out))
    assert len(lines) == len(reader.tensors) + 1 and lines[-1].startswith("total:")
    stats = {}
    for line in lines[:-1]:
        m = re.match(r"(\S+)\s+\S+\s+(\S+)\s+->\s+(\S+)\s+\S+ bpw\s+rmse (\S+)\s+rel (\S+)\s+max (\S+)", line)
        assert m, line
        stats[m.group(1)] = (m.group(3), float(m.group(4)), float(m.group(6)))
    for t in reader.tensors:
        name = t.name
        dst, rmse, mx = stats[name]
        assert dst == t.tensor_type.name.lower()
        d = src[name].reshape(-1).astype(np.float64) - tensor_values(t).reshape(-1).astype(np.float64)
        assert rmse == pytest.approx(np.sqrt(np.mean(d ** 2)), rel=1e-3, abs=1e-12), name
        assert mx == pytest.approx(np.max(np.abs(d)), rel=1e-3, abs=1e-12), name


# ---- llama.cpp's files -----------------------------------------------------------------------------------------

def ref_file(name):
    p = REF_DIR / name
    if not p.exists():
        pytest.skip(f"{p} not present (llama.cpp reference data)")
    return p


@pytest.mark.parametrize("src_name,qtype,ref_name", [
    ("tiny-seed7-F32.gguf", "q4_k_m", "tiny-seed7-Q4_K_M.gguf"),
    ("tiny-seed7-F32.gguf", "q4_0", "tiny-seed7-Q4_0.gguf"),
    ("tiny-seed7-F32.gguf", "q8_0", "tiny-seed7-Q8_0.gguf"),
    ("tiny-seed7-F16.gguf", "q8_0", "tiny-seed7-Q8_0.gguf"),
])
def test_against_llama_quantize(tmp_path, src_name, qtype, ref_name):
    src_path, ref_path = ref_file(src_name), ref_file(ref_name)
    out = tmp_path / "out.gguf"
    run_quantize(src_path, out, qtype)
    ours = {t.name: t for t in gguf.GGUFReader(str(out)).tensors}
    theirs = {t.name: t for t in gguf.GGUFReader(str(ref_path)).tensors}
    source = {t.name: t for t in gguf.GGUFReader(str(ref_file("tiny-seed7-F32.gguf"))).tensors}
    assert set(ours) == set(theirs)
    err_ours = err_theirs = 0.0
    for name, t in theirs.items():
        assert ours[name].tensor_type == t.tensor_type, f"{name}: {ours[name].tensor_type.name} vs {t.tensor_type.name}"
        x = np.array(source[name].data).reshape(-1).astype(np.float64)
        err_ours += float(np.sum((tensor_values(ours[name]).reshape(-1) - x) ** 2))
        err_theirs += float(np.sum((tensor_values(t).reshape(-1) - x) ** 2))
    print(f"{src_name} -> {qtype}: total squared error ours {err_ours:.4e}, llama-quantize {err_theirs:.4e}")
    if src_name.endswith("F32.gguf"):
        assert err_ours <= err_theirs


# ---- failures --------------------------------------------------------------------------------------------------

def test_failures_leave_nothing(models, tmp_path):
    path, _, dims = models[("moe8", "f32")]
    out = tmp_path / "out.gguf"
    r = run_quantize(tmp_path / "missing.gguf", out, "q8_0", check=False)
    assert r.returncode == 1 and "missing.gguf" in r.stderr
    assert not out.exists()

    r = run_quantize(path, tmp_path / "no-such-dir" / "out.gguf", "q8_0", check=False)
    assert r.returncode == 1 and r.stderr

    bad = tmp_path / "nan.gguf"
    write_model(bad, *dims, "f32", nan_in="blk.1.ffn_up_exps.weight")
    r = run_quantize(bad, out, "q4_0", check=False)
    assert r.returncode == 1 and "blk.1.ffn_up_exps.weight" in r.stderr and "NaN" in r.stderr
    assert not out.exists()

    r = run_quantize(path, out, "q3_k", check=False)
    assert r.returncode == 2

    q8 = tmp_path / "q8.gguf"
    run_quantize(path, q8, "q8_0")
    r = run_quantize(q8, out, "q4_0", check=False)
    assert r.returncode == 1 and "already quantized" in r.stderr
    assert not out.exists()
    run_quantize(q8, out, "q4_0", "--allow-requantize")
    assert out.exists()
    # what remains in the folder: inputs and finished outputs only, no temporary files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.gguf", "out.gguf", "q8.gguf"]


# ---- bounded memory --------------------------------------------------------------------------------------------

def test_peak_memory_bounded(tmp_path):
    """Resident memory does not grow with the file: a ~170 MB F16 model quantizes in well under its size (the source
    is read through mmap; pages are released once read)."""
    rng = np.random.default_rng(1)
    src = tmp_path / "big-f16.gguf"
    w = gguf.GGUFWriter(str(src), "llama")
    w.add_block_count(2)
    w.add_expert_count(8)
    for name, shape in [("token_embd.weight", (32000, 1024)), ("blk.0.ffn_up_exps.weight", (8, 1024, 1024)),
                        ("blk.1.ffn_up_exps.weight", (8, 1024, 1024)), ("output.weight", (32000, 1024))]:
        w.add_tensor(name, (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    size = src.stat().st_size
    probe = ("import resource, subprocess, sys\n"
             "r = subprocess.run(sys.argv[1:])\n"
             "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", probe, smoe(), "quantize", str(src), str(tmp_path / "q.gguf"),
                          "--type", "q8_0", "--quiet", "--threads", "2"], capture_output=True, text=True, check=True)
    rc, maxrss_kib = map(int, out.stdout.split())
    assert rc == 0
    print(f"input {size / 2**20:.0f} MiB, peak RSS {maxrss_kib / 1024:.0f} MiB")
    assert maxrss_kib * 1024 < min(size / 2, 120 * 2**20)
