"""smoe's forward pass against a float64 numpy Mixtral (tests/python/mixtral_ref.py), on GGUF files written here by
the `gguf` package (so neither the file nor the reference comes from smoe's code).

- random tiny models (F32, Q8_0, grouped-query heads, partial rotary dims, tied output) at every position, decoded in
  one batch, in chunks of n_batch and one token at a time;
- the older one-tensor-per-expert layout gives exactly the logits of the merged layout (our files and, when present,
  llama.cpp's small-seed7-Q8_0.gguf rewritten per expert);
- llama.cpp's tiny-seed7-F32.gguf (development data, skipped when absent) at every position of a prompt.

Run with SMOE_BUILD_DIR pointing at a meson build directory (uses tests/model-logits).
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
sys.path.insert(0, str(Path(__file__).parent))
from mixtral_ref import MixtralRef  # noqa: E402

BUILD = os.environ.get("SMOE_BUILD_DIR")
pytestmark = pytest.mark.skipif(not BUILD, reason="SMOE_BUILD_DIR is not set")
REF = Path("/work/shared/data/llamacpp-ref")
Q = gguf.GGMLQuantizationType


def tool():
    p = Path(BUILD) / "tests" / "model-logits"
    if not p.exists():
        pytest.skip(f"{p} not built")
    return p


def smoe_logits(path, ids, n_vocab, *args):
    out = Path(str(path) + ".logits")
    r = subprocess.run([str(tool()), str(path), str(out), *args, *map(str, ids)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return np.fromfile(out, dtype=np.float32).reshape(len(ids), n_vocab)


def write_model(path, *, seed=0, n_layer=2, n_embd=64, n_head=4, n_head_kv=2, n_ff=96, n_expert=4, n_used=2,
                n_vocab=200, n_rot=None, theta=1e6, qtype=None, per_expert=False, tied=False, arch="llama"):
    """A random Mixtral-shaped GGUF in llama.cpp's layout. Returns its path."""
    rng = np.random.default_rng(seed)
    hd = n_embd // n_head
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("test")
    w.add_uint32(f"{arch}.block_count", n_layer)
    w.add_uint32(f"{arch}.context_length", 2048)
    w.add_uint32(f"{arch}.embedding_length", n_embd)
    w.add_uint32(f"{arch}.feed_forward_length", n_ff)
    w.add_uint32(f"{arch}.attention.head_count", n_head)
    w.add_uint32(f"{arch}.attention.head_count_kv", n_head_kv)
    w.add_float32(f"{arch}.rope.freq_base", theta)
    w.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_uint32(f"{arch}.expert_count", n_expert)
    w.add_uint32(f"{arch}.expert_used_count", n_used)
    if n_rot is not None:
        w.add_uint32(f"{arch}.rope.dimension_count", n_rot)

    def mat(*shape):  # numpy shape = reversed ggml ne; values ~ 1/sqrt(k)
        return (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)

    def add(name, a, norm=False):
        if qtype is None or norm:
            w.add_tensor(name, a)
        else:
            w.add_tensor(name, gguf.quants.quantize(a, qtype), raw_dtype=qtype)

    def norm():
        return (1.0 + 0.2 * rng.standard_normal(n_embd)).astype(np.float32)

    add("token_embd.weight", mat(n_vocab, n_embd))
    add("output_norm.weight", norm(), True)
    if not tied:
        add("output.weight", mat(n_vocab, n_embd))
    for il in range(n_layer):
        p = f"blk.{il}."
        add(p + "attn_norm.weight", norm(), True)
        add(p + "attn_q.weight", mat(n_head * hd, n_embd))
        add(p + "attn_k.weight", mat(n_head_kv * hd, n_embd))
        add(p + "attn_v.weight", mat(n_head_kv * hd, n_embd))
        add(p + "attn_output.weight", mat(n_embd, n_head * hd))
        add(p + "ffn_norm.weight", norm(), True)
        add(p + "ffn_gate_inp.weight", mat(n_expert, n_embd))
        exps = {"gate": mat(n_expert, n_ff, n_embd), "down": mat(n_expert, n_embd, n_ff),
                "up": mat(n_expert, n_ff, n_embd)}
        for kind, a in exps.items():
            if per_expert:
                for e in range(n_expert):
                    add(f"{p}ffn_{kind}.{e}.weight", np.ascontiguousarray(a[e]))
            else:
                add(f"{p}ffn_{kind}_exps.weight", a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def split_experts(src, dst):
    """Rewrites a GGUF with every merged ffn_*_exps tensor split into per-expert tensors (same bytes)."""
    r = gguf.GGUFReader(str(src))
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(str(dst), arch)
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture":
            continue
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            w.add_key_value(k, f.contents(), f.types[0], sub_type=f.types[-1])
        else:
            w.add_key_value(k, f.contents(), f.types[0])
    for t in r.tensors:
        if t.name.endswith("_exps.weight"):
            base = t.name[: -len("_exps.weight")]
            for e in range(t.data.shape[0]):
                w.add_tensor(f"{base}.{e}.weight", np.ascontiguousarray(t.data[e]), raw_dtype=t.tensor_type)
        else:
            w.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return dst


def rel(a, b):
    """max |a - b| / max |b| per row."""
    return np.abs(a - b).max(axis=-1) / np.abs(b).max(axis=-1)


IDS = [1, 17, 42, 5, 199, 63, 7, 7, 30, 81, 2, 55, 120, 3]


@pytest.mark.parametrize("variant", [
    dict(),
    dict(n_head=8, n_head_kv=2, n_embd=128, theta=10000.0),   # 4 query heads per kv head, head_dim 16
    dict(n_head_kv=4, n_rot=8),                                # no GQA; RoPE on half of each head
    dict(tied=True, n_expert=8, n_used=2, arch="mixtral"),
    dict(n_used=1, n_layer=3),
])
def test_f32_matches_float64_reference(tmp_path, variant):
    path = write_model(tmp_path / "m.gguf", **variant)
    ref = MixtralRef(str(path)).forward(IDS)
    n_vocab = ref.shape[1]
    for args in ([], ["--n-batch", "3"], ["--one-by-one"], ["--no-mmap", "--kv", "f32"]):
        got = smoe_logits(path, IDS, n_vocab, *args)
        assert rel(got, ref).max() < 1e-4, (args, rel(got, ref))


def test_q8_0_and_kv_types(tmp_path):
    path = write_model(tmp_path / "q8.gguf", qtype=Q.Q8_0, seed=3, n_embd=128)  # head_dim 32 for a q8_0 cache
    ref = MixtralRef(str(path)).forward(IDS)  # on the dequantized weights, without rounding activations
    for kv in ("f32", "f16", "q8_0"):
        got = smoe_logits(path, IDS, ref.shape[1], "--kv", kv)
        cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
        assert cos.min() > 0.999, (kv, cos)
        assert rel(got, ref).max() < 0.05, (kv, rel(got, ref))


@pytest.mark.parametrize("qtype", [None, Q.Q8_0])
def test_per_expert_layout_identical(tmp_path, qtype):
    merged = write_model(tmp_path / "merged.gguf", qtype=qtype, seed=5)
    split = write_model(tmp_path / "split.gguf", qtype=qtype, seed=5, per_expert=True)
    a = smoe_logits(merged, IDS, 200)
    b = smoe_logits(split, IDS, 200)
    c = smoe_logits(split, IDS, 200, "--no-mmap")
    assert np.array_equal(a, b) and np.array_equal(a, c)


def _llamacpp(name):
    p = REF / "gguf" / f"{name}.gguf"
    if not p.exists():
        pytest.skip(f"{p} not present (llama.cpp reference data)")
    return p


def test_llamacpp_small_q8_0_per_expert_identical(tmp_path):
    src = _llamacpp("small-seed7-Q8_0")
    split = split_experts(src, tmp_path / "small-split.gguf")
    ids = [1, 733, 16289, 28793, 13702, 426, 297, 989]
    a = smoe_logits(src, ids, 32000)
    b = smoe_logits(split, ids, 32000)
    assert np.array_equal(a, b)


def test_llamacpp_tiny_f32_all_positions():
    import json
    path = _llamacpp("tiny-seed7-F32")
    ids = json.loads((REF / "refs" / "tiny-seed7-F32" / "en.json").read_text())["prompt_tokens"]
    ref = MixtralRef(str(path)).forward(ids)
    got = smoe_logits(path, ids, 32000)
    assert rel(got, ref).max() < 1e-5, rel(got, ref)
    last = np.fromfile(REF / "refs" / "tiny-seed7-F32" / "en.logits.f32", dtype=np.float32)
    assert rel(ref[-1], last) < 1e-5  # the numpy reference agrees with llama.cpp too
