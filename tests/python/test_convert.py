"""`smoe convert` (Hugging Face Mixtral -> GGUF) against independent references.

Checkpoints come from tests/gen/gen_tiny_mixtral.py (the PyPI safetensors package, the real Mixtral tokenizer from
mistral-common). The expected tensors are computed here in numpy from the safetensors files, which this file parses
itself (8-byte length, JSON header, raw little-endian data): llama.cpp's layout (convert_hf_to_gguf.py) re-stated
in numpy: HF [out, in] matrices as they are, experts stacked into [n_expert, out, in], q_proj/k_proj rows permuted
with reshape(n_head, 2, head_dim / 2, in).swapaxes(1, 2), norms and the router kept F32.

(a) F32/F16/BF16 outputs from F32/F16/BF16 sources equal the expected bytes exactly (the gguf package's GGUFReader
    reads every file written here);
(b) quantized outputs (q8_0, q4_0, q4_k_m, q5_k_m, auto) dequantize (gguf.quants) within a relative RMSE bound of
    the source per type, with the per-tensor types of the mix;
(c) metadata: hyper-parameters from config.json, the vocabulary equal to sentencepiece's view of tokenizer.model
    under llama.cpp's rules, special ids, add_bos/add_eos, chat template;
(d) llama.cpp's own conversion of a checkpoint (skipped when /work/shared/data/llamacpp-ref is absent): same tensor
    names, shapes, types and bytes (F32, F16), same metadata except the keys listed in LLAMACPP_EXTRA; for its
    quantized files the same tensor types;
(e) bad input: every failure exits 1 with a message naming the problem and leaves no output or temporary file;
(f) cancellation through the progress callback (ctypes on libsmoe.so) and SIGINT leave no file either.
"""
import ctypes
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
spm = pytest.importorskip("sentencepiece")
from gguf import GGMLQuantizationType as QT  # noqa: E402
from gguf import GGUFReader  # noqa: E402
from gguf import quants  # noqa: E402

BUILD = os.environ.get("SMOE_BUILD_DIR")
pytestmark = pytest.mark.skipif(not BUILD, reason="SMOE_BUILD_DIR is not set")
SRC = Path(__file__).resolve().parents[2]
GEN = SRC / "tests" / "gen" / "gen_tiny_mixtral.py"
LLAMACPP = Path("/work/shared/data/llamacpp-ref")

# relative RMSE (||x - q|| / ||x||) bounds per output type on the generator's normal weights; measured values are
# ~25% lower (Q8_0 0.0061, Q6_K 0.013, Q5_K 0.028, Q5_0 0.044, Q4_K 0.055, Q4_0 0.085)
REL_BOUND = {QT.F32: 0.0, QT.F16: 6e-4, QT.BF16: 4e-3, QT.Q8_0: 8e-3, QT.Q6_K: 0.018, QT.Q5_1: 0.045,
             QT.Q5_K: 0.036, QT.Q5_0: 0.055, QT.Q4_1: 0.08, QT.Q4_K: 0.07, QT.Q4_0: 0.105}
# keys our files have and llama.cpp's conversion of a checkpoint without tokenizer.json has not
LLAMACPP_EXTRA = {"tokenizer.ggml.unknown_token_id"}


def smoe():
    p = Path(BUILD) / "tools" / "smoe"
    if not p.exists():
        pytest.skip(f"{p} not built")
    return str(p)


def run_convert(src, dst, qtype=None, *extra, check=True):
    cmd = [smoe(), "convert", str(src), "-o", str(dst), "--quiet", *extra]
    if qtype:
        cmd += ["--type", qtype]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def generate(out, *args):
    subprocess.run([sys.executable, str(GEN), str(out), *args], check=True, capture_output=True)
    return out


# ---- an independent safetensors reader ----

ST_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I32": np.int32, "I8": np.int8}


def read_st_header(path):
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data, 8 + n


def write_st(path, header, data_section):
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(h)) + h + data_section)


def read_checkpoint(d):
    """name -> (dtype, array) with BF16 as raw uint16 bits."""
    out = {}
    for f in sorted(Path(d).glob("*.safetensors")):
        hdr, data, start = read_st_header(f)
        for name, e in hdr.items():
            if name == "__metadata__":
                continue
            b, end = e["data_offsets"]
            arr = np.frombuffer(data[start + b:start + end], dtype=ST_DTYPES[e["dtype"]]).reshape(e["shape"])
            out[name] = (e["dtype"], arr)
    return out


def to_f32(dtype, a):
    if dtype == "BF16":
        return (a.astype(np.uint32) << 16).view(np.float32)
    return a.astype(np.float32)


def f32_to_bf16_bits(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def permute(w, n_head):
    """llama.cpp's LlamaModel.permute."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def expected_tensors(ckpt, cfg):
    """GGUF name -> (source dtype, array in GGUF numpy order) as llama.cpp lays them out, source dtype kept."""
    nh, nkv, ne = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["num_local_experts"]
    t = {"token_embd.weight": ckpt["model.embed_tokens.weight"], "output_norm.weight": ckpt["model.norm.weight"],
         "output.weight": ckpt["lm_head.weight"]}
    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "post_attention_layernorm": "ffn_norm", "block_sparse_moe.gate": "ffn_gate_inp"}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        for hf, g in names.items():
            dt, a = ckpt[p + hf + ".weight"]
            if g == "attn_q":
                a = permute(a, nh)
            elif g == "attn_k":
                a = permute(a, nkv)
            t[f"blk.{i}.{g}.weight"] = (dt, a)
        for w, g in (("w1", "ffn_gate_exps"), ("w2", "ffn_down_exps"), ("w3", "ffn_up_exps")):
            parts = [ckpt[p + f"block_sparse_moe.experts.{e}.{w}.weight"] for e in range(ne)]
            t[f"blk.{i}.{g}.weight"] = (parts[0][0], np.stack([a for _, a in parts]))
    return t


def expected_bytes(dtype, a, out_type):
    if out_type == QT.F32:
        return to_f32(dtype, a).tobytes()
    if out_type == QT.F16:
        return a.tobytes() if dtype == "F16" else to_f32(dtype, a).astype(np.float16).tobytes()
    if out_type == QT.BF16:
        return a.tobytes() if dtype == "BF16" else f32_to_bf16_bits(to_f32(dtype, a)).tobytes()
    raise AssertionError(out_type)


def keeps_f32(name, ndim):
    return ndim < 2 or name.endswith("_norm.weight") or "ffn_gate_inp" in name


# ---- fixtures ----

@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    base = tmp_path_factory.mktemp("ckpt")
    return {
        "f32": generate(base / "tiny-f32", "--dtype", "f32", "--shards", "2"),
        "f16": generate(base / "tiny-f16", "--dtype", "f16", "--shards", "3", "--seed", "11"),
        "bf16": generate(base / "tiny-bf16", "--dtype", "bf16", "--shards", "1", "--seed", "12"),
        "small": generate(base / "small-f16", "--preset", "small", "--dtype", "f16", "--seed", "7"),
    }


def config_of(d):
    return json.loads((Path(d) / "config.json").read_text())


def field(r, key):
    f = r.get_field(key)
    return None if f is None else f.contents()


# ---- (a) exact plain types ----

@pytest.mark.parametrize("src", ["f32", "f16", "bf16"])
@pytest.mark.parametrize("out", ["f32", "f16", "bf16"])
def test_plain_types_exact(ckpts, tmp_path, src, out):
    d = ckpts[src]
    dst = tmp_path / f"{src}-{out}.gguf"
    run_convert(d, dst, out)
    r = GGUFReader(dst)
    exp = expected_tensors(read_checkpoint(d), config_of(d))
    got = {t.name: t for t in r.tensors}
    assert set(got) == set(exp)
    out_type = {"f32": QT.F32, "f16": QT.F16, "bf16": QT.BF16}[out]
    for name, (dt, a) in exp.items():
        t = got[name]
        want_type = QT.F32 if keeps_f32(name, a.ndim) else out_type
        assert t.tensor_type == want_type, name
        assert list(t.shape) == list(reversed(a.shape)), name  # GGUF lists the fastest dimension first
        assert t.data.tobytes() == expected_bytes(dt, a, want_type), name
    assert field(r, "general.file_type") == {"f32": 0, "f16": 1, "bf16": 32}[out]


# ---- (b) quantized types ----

def mix_types(ftype, name, ne0, cfg):
    """llama-quantize's per-tensor choice for a Mixtral (llama.cpp llama_tensor_get_type), smoe's auto mix."""
    n_layer, n_expert = cfg["num_hidden_layers"], cfg["num_local_experts"]
    layer = int(name.split(".")[1]) if name.startswith("blk.") else -1

    def more_bits(i, n):
        return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2

    def fallback(t):
        if t in (QT.Q4_K, QT.Q5_K, QT.Q6_K) and ne0 % 256:
            t = {QT.Q4_K: QT.Q5_0, QT.Q5_K: QT.Q5_1, QT.Q6_K: QT.Q8_0}[t]
        return t

    if name.endswith("_norm.weight") or "ffn_gate_inp" in name:
        return QT.F32
    if ftype == "auto":
        if "_exps" in name:
            return QT.Q4_K if ne0 % 256 == 0 else QT.Q4_0
        if "attn_" in name:
            return QT.Q8_0
        return fallback(QT.Q4_K if name == "token_embd.weight" else QT.Q6_K)
    base = {"q8_0": QT.Q8_0, "q4_0": QT.Q4_0, "q4_k_m": QT.Q4_K, "q5_k_m": QT.Q5_K}[ftype]
    kmix = ftype in ("q4_k_m", "q5_k_m")
    if name == "output.weight":
        return QT.Q8_0 if base == QT.Q8_0 or ne0 % 256 else QT.Q6_K
    t = base
    if "attn_v" in name:
        t = QT.Q8_0 if n_expert == 8 else (QT.Q6_K if kmix and more_bits(layer, n_layer) else base)
    elif "attn_k" in name:
        t = QT.Q8_0 if n_expert == 8 else base
    elif "attn_output" in name:
        t = QT.Q5_K if n_expert == 8 and ftype == "q4_k_m" else base
    elif "ffn_down" in name:
        t = QT.Q6_K if kmix and more_bits(layer, n_layer) else base
    return fallback(t)


@pytest.mark.parametrize("src", ["f32", "small"])
@pytest.mark.parametrize("ftype", ["q8_0", "q4_0", "q4_k_m", "q5_k_m", "auto"])
def test_quantized_within_bounds(ckpts, tmp_path, src, ftype):
    d = ckpts[src]
    cfg = config_of(d)
    dst = tmp_path / f"{src}-{ftype}.gguf"
    run_convert(d, dst, ftype)
    r = GGUFReader(dst)
    exp = expected_tensors(read_checkpoint(d), cfg)
    got = {t.name: t for t in r.tensors}
    assert set(got) == set(exp)
    for name, (dt, a) in exp.items():
        t = got[name]
        want = mix_types(ftype, name, a.shape[-1], cfg)
        assert t.tensor_type == want, (name, t.tensor_type.name, want.name)
        x = to_f32(dt, a).astype(np.float64)
        y = quants.dequantize(t.data, t.tensor_type).astype(np.float64).reshape(x.shape)
        rel = np.sqrt(np.sum((x - y) ** 2) / np.sum(x ** 2))
        assert rel <= REL_BOUND[t.tensor_type], (name, t.tensor_type.name, rel)
    assert field(r, "general.file_type") == {"q8_0": 7, "q4_0": 2, "q4_k_m": 15, "q5_k_m": 17, "auto": 15}[ftype]
    assert field(r, "general.quantization_version") == 2
    # llama.cpp's small files (8 experts, rows of 256: real K-quants) have the shapes of the generator's small
    # preset: the per-tensor types must agree with llama-quantize's
    ref = LLAMACPP / "gguf" / f"small-seed7-{ftype.upper()}.gguf"
    if src == "small" and ref.exists():
        assert {t.name: (t.tensor_type, list(t.shape)) for t in r.tensors} == \
            {t.name: (t.tensor_type, list(t.shape)) for t in GGUFReader(ref).tensors}


# ---- (c) metadata ----

def test_metadata(ckpts, tmp_path):
    d = ckpts["f16"]
    cfg = config_of(d)
    tc = json.loads((d / "tokenizer_config.json").read_text())
    dst = tmp_path / "meta.gguf"
    run_convert(d, dst, "f16")
    r = GGUFReader(dst)
    want = {
        "general.architecture": "llama", "general.type": "model", "general.name": "Tiny F16",
        "llama.block_count": cfg["num_hidden_layers"], "llama.context_length": cfg["max_position_embeddings"],
        "llama.embedding_length": cfg["hidden_size"], "llama.feed_forward_length": cfg["intermediate_size"],
        "llama.attention.head_count": cfg["num_attention_heads"],
        "llama.attention.head_count_kv": cfg["num_key_value_heads"],
        "llama.expert_count": cfg["num_local_experts"], "llama.expert_used_count": cfg["num_experts_per_tok"],
        "llama.vocab_size": cfg["vocab_size"],
        "llama.rope.dimension_count": cfg["hidden_size"] // cfg["num_attention_heads"],
        "tokenizer.ggml.model": "llama", "tokenizer.ggml.pre": "default",
        "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2, "tokenizer.ggml.unknown_token_id": 0,
        "tokenizer.ggml.add_bos_token": True, "tokenizer.ggml.add_eos_token": False,
        "tokenizer.chat_template": tc["chat_template"], "general.quantization_version": 2,
    }
    for k, v in want.items():
        assert field(r, k) == v, k
    assert field(r, "llama.rope.freq_base") == pytest.approx(cfg["rope_theta"], rel=1e-7)
    assert field(r, "llama.attention.layer_norm_rms_epsilon") == pytest.approx(cfg["rms_norm_eps"], rel=1e-7)
    # parameters: shared + one expert, as gguf-py's size_label
    n = sum(int(np.prod(t.shape)) for t in r.tensors)
    n_exp = sum(int(np.prod(t.shape)) for t in r.tensors if "_exps" in t.name)
    ne = cfg["num_local_experts"]
    assert field(r, "general.size_label") == gguf.utility.size_label(n, n - n_exp, n_exp // ne, ne)

    # the vocabulary: sentencepiece's pieces, scores and types (llama.cpp: unknown 2, control 3, unused 5, byte 6,
    # else normal 1)
    sp = spm.SentencePieceProcessor(model_file=str(d / "tokenizer.model"))
    tokens, scores, types = (field(r, f"tokenizer.ggml.{k}") for k in ("tokens", "scores", "token_type"))
    assert len(tokens) == len(scores) == len(types) == cfg["vocab_size"] == sp.vocab_size()
    for i in range(sp.vocab_size()):
        t = 2 if sp.IsUnknown(i) else 3 if sp.IsControl(i) else 5 if sp.IsUnused(i) else 6 if sp.IsByte(i) else 1
        assert (tokens[i], types[i]) == (sp.IdToPiece(i), t), i
        assert scores[i] == np.float32(sp.GetScore(i)), i
    assert r.get_field("tokenizer.ggml.token_type").types[-1] == gguf.GGUFValueType.INT32


def test_added_tokens(ckpts, tmp_path):
    """added_tokens_decoder entries become CONTROL (special) or USER_DEFINED with score -1000, as in llama.cpp."""
    d = tmp_path / "added"
    shutil.copytree(ckpts["f32"], d)
    tc = json.loads((d / "tokenizer_config.json").read_text())
    tc["added_tokens_decoder"] = {
        "0": {"content": "<unk>", "special": True}, "1": {"content": "<s>", "special": True},
        "31999": {"content": "\u2581hello", "special": False}, "31998": {"content": "<|im|>", "special": False},
    }
    (d / "tokenizer_config.json").write_text(json.dumps(tc))
    dst = tmp_path / "added.gguf"
    run_convert(d, dst, "f32")
    r = GGUFReader(dst)
    tokens, scores, types = (field(r, f"tokenizer.ggml.{k}") for k in ("tokens", "scores", "token_type"))
    assert (tokens[0], scores[0], types[0]) == ("<unk>", -1000.0, 3)
    assert (tokens[1], scores[1], types[1]) == ("<s>", -1000.0, 3)
    assert (tokens[31999], scores[31999], types[31999]) == (" hello", -1000.0, 4)
    assert (tokens[31998], scores[31998], types[31998]) == ("<|im|>", -1000.0, 3)


# ---- (d) llama.cpp's own conversion ----

def all_fields(r):
    return {f.name: (tuple(f.types), f.contents()) for f in r.fields.values() if not f.name.startswith("GGUF.")}


@pytest.fixture(scope="module")
def llamacpp_ckpt(tmp_path_factory):
    hf = LLAMACPP / "hf" / "tiny-seed7-f32"
    tok = LLAMACPP.parent / "tokenizer.model.v1"
    if not hf.is_dir() or not tok.exists():
        pytest.skip("/work/shared/data/llamacpp-ref is absent")
    d = tmp_path_factory.mktemp("llamacpp") / "tiny-seed7-f32"  # llama.cpp named the model after this folder
    shutil.copytree(hf, d)
    shutil.copyfile(tok, d / "tokenizer.model")
    return d


@pytest.mark.parametrize("out", ["F32", "F16"])
def test_same_as_llamacpp(llamacpp_ckpt, tmp_path, out):
    dst = tmp_path / f"ours-{out}.gguf"
    run_convert(llamacpp_ckpt, dst, out.lower())
    ours, theirs = GGUFReader(dst), GGUFReader(LLAMACPP / "gguf" / f"tiny-seed7-{out}.gguf")
    a, b = all_fields(ours), all_fields(theirs)
    assert set(a) - set(b) == LLAMACPP_EXTRA
    assert set(b) - set(a) == set()
    for k in b:
        assert a[k] == b[k], k
    ta, tb = {t.name: t for t in ours.tensors}, {t.name: t for t in theirs.tensors}
    assert set(ta) == set(tb)
    for n in tb:
        assert (ta[n].tensor_type, list(ta[n].shape)) == (tb[n].tensor_type, list(tb[n].shape)), n
        assert ta[n].data.tobytes() == tb[n].data.tobytes(), n


@pytest.mark.parametrize("ftype", ["Q8_0", "Q4_0", "Q4_K_M"])
def test_types_as_llamacpp(llamacpp_ckpt, tmp_path, ftype):
    dst = tmp_path / f"ours-{ftype}.gguf"
    run_convert(llamacpp_ckpt, dst, ftype.lower())
    ours, theirs = GGUFReader(dst), GGUFReader(LLAMACPP / "gguf" / f"tiny-seed7-{ftype}.gguf")
    ta, tb = {t.name: t for t in ours.tensors}, {t.name: t for t in theirs.tensors}
    assert set(ta) == set(tb)
    for n in tb:
        assert (ta[n].tensor_type, list(ta[n].shape)) == (tb[n].tensor_type, list(tb[n].shape)), n
        # both are roundings of the same source: close to each other within twice the type's bound
        x = quants.dequantize(ta[n].data, ta[n].tensor_type).astype(np.float64)
        y = quants.dequantize(tb[n].data, tb[n].tensor_type).astype(np.float64)
        assert np.sqrt(np.sum((x - y) ** 2) / np.sum(y ** 2)) <= 2 * REL_BOUND[tb[n].tensor_type], n
    assert field(ours, "general.file_type") == field(theirs, "general.file_type")


# ---- (e) bad input ----

def leftovers(folder, name):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith(name))


def expect_failure(src, tmp_path, *needles, out=None, code=1):
    dst = Path(out) if out else tmp_path / "out" / "model.gguf"
    if not out:
        dst.parent.mkdir(exist_ok=True)
    r = run_convert(src, dst, "q8_0", check=False)
    assert r.returncode == code, r.stderr
    for n in needles:
        assert n in r.stderr, (n, r.stderr)
    if dst.parent.exists():
        assert leftovers(dst.parent, dst.name) == [], "output or temporary file left behind"
    return r.stderr


@pytest.fixture
def broken(ckpts, tmp_path):
    d = tmp_path / "broken"
    shutil.copytree(ckpts["f32"], d)
    return d


SHARD1, SHARD2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"


def test_missing_shard(broken, tmp_path):
    (broken / SHARD2).unlink()
    expect_failure(broken, tmp_path, SHARD2, "No such file", "i/o error")


def test_truncated_shard(broken, tmp_path):
    p = broken / SHARD2
    p.write_bytes(p.read_bytes()[:-100])
    expect_failure(broken, tmp_path, SHARD2, "out of range", "truncated", "corrupt file")


def test_header_length_beyond_file(broken, tmp_path):
    p = broken / SHARD1
    data = bytearray(p.read_bytes())
    data[:8] = struct.pack("<Q", len(data) + 1000)
    p.write_bytes(bytes(data))
    expect_failure(broken, tmp_path, SHARD1, "header length", "beyond the end of the file")


def edit_header(path, fn):
    hdr, data, start = read_st_header(path)
    fn(hdr)
    write_st(path, hdr, data[start:])


def test_overlapping_offsets(broken, tmp_path):
    def overlap(h):
        names = sorted((e["data_offsets"][0], n) for n, e in h.items() if n != "__metadata__")
        (b0, n0), (b1, n1) = names[0], names[1]
        e0 = h[n0]["data_offsets"][1]
        size1 = h[n1]["data_offsets"][1] - h[n1]["data_offsets"][0]
        h[n1]["data_offsets"] = [e0 - 4, e0 - 4 + size1]  # starts inside the previous tensor

    edit_header(broken / SHARD1, overlap)
    expect_failure(broken, tmp_path, SHARD1, "overlap")


def test_out_of_range_offsets(broken, tmp_path):
    def shift(h):
        n = max((e["data_offsets"][1], k) for k, e in h.items() if k != "__metadata__")[1]
        b, e = h[n]["data_offsets"]
        h[n]["data_offsets"] = [b + 64, e + 64]

    edit_header(broken / SHARD2, shift)
    expect_failure(broken, tmp_path, SHARD2, "out of range")


def test_unknown_dtype(broken, tmp_path):
    def bad(h):
        h["model.norm.weight"]["dtype"] = "F24"

    shard = SHARD1 if "model.norm.weight" in read_st_header(broken / SHARD1)[0] else SHARD2
    edit_header(broken / shard, bad)
    expect_failure(broken, tmp_path, "unknown dtype \"F24\"")


def test_dtype_not_supported(broken, tmp_path):
    name = "model.layers.0.self_attn.q_proj.weight"

    def to_i32(h):
        h[name]["dtype"] = "I32"  # same size as F32: a valid file, not a Mixtral smoe converts

    shard = SHARD1 if name in read_st_header(broken / SHARD1)[0] else SHARD2
    edit_header(broken / shard, to_i32)
    expect_failure(broken, tmp_path, name, "dtype I32", "unsupported")


def test_shape_not_matching_config(broken, tmp_path):
    cfg = config_of(broken)
    cfg["intermediate_size"] = 2 * cfg["intermediate_size"]
    (broken / "config.json").write_text(json.dumps(cfg))
    expect_failure(broken, tmp_path, "does not match config.json", "expected [256, 64]")


def test_missing_tensor(broken, tmp_path):
    name = "model.layers.1.block_sparse_moe.experts.3.w2.weight"
    shard = SHARD1 if name in read_st_header(broken / SHARD1)[0] else SHARD2
    edit_header(broken / shard, lambda h: h.pop(name))
    index = json.loads((broken / "model.safetensors.index.json").read_text())
    del index["weight_map"][name]
    (broken / "model.safetensors.index.json").write_text(json.dumps(index))
    expect_failure(broken, tmp_path, f"tensor '{name}' is missing")


def test_tensor_missing_from_shard(broken, tmp_path):
    """The index names a tensor its shard does not hold (an incomplete shard)."""
    name = "model.norm.weight"
    shard = SHARD1 if name in read_st_header(broken / SHARD1)[0] else SHARD2
    edit_header(broken / shard, lambda h: h.pop(name))
    expect_failure(broken, tmp_path, f"tensor '{name}' is missing", "incomplete shard")


def test_unknown_architecture(broken, tmp_path):
    cfg = config_of(broken)
    cfg["architectures"], cfg["model_type"] = ["LlamaForCausalLM"], "llama"
    (broken / "config.json").write_text(json.dumps(cfg))
    expect_failure(broken, tmp_path, "unknown architecture LlamaForCausalLM", "unsupported")


def test_nan_weight(broken, tmp_path):
    """A NaN cannot be quantized: q8_0 fails naming the tensor; f32 copies it."""
    name = "model.layers.0.self_attn.v_proj.weight"
    shard = broken / (SHARD1 if name in read_st_header(broken / SHARD1)[0] else SHARD2)
    hdr, data, start = read_st_header(shard)
    data = bytearray(data)
    at = start + hdr[name]["data_offsets"][0] + 4 * 70  # row 1
    data[at:at + 4] = struct.pack("<f", float("nan"))
    shard.write_bytes(bytes(data))
    expect_failure(broken, tmp_path, f"tensor '{name}': row 1 holds NaN or Inf")
    run_convert(broken, tmp_path / "nan-f32.gguf", "f32")


def test_missing_tokenizer(broken, tmp_path):
    (broken / "tokenizer.model").unlink()
    expect_failure(broken, tmp_path, "tokenizer.model")


def test_unwritable_output(ckpts, tmp_path):
    expect_failure(ckpts["f32"], tmp_path, "cannot create", out=tmp_path / "no-such-dir" / "m.gguf")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write to read-only folders")
        expect_failure(ckpts["f32"], tmp_path, "cannot create", out=ro / "m.gguf")
    finally:
        ro.chmod(0o755)


def test_existing_output_kept_on_failure(broken, tmp_path):
    out = tmp_path / "keep" / "model.gguf"
    out.parent.mkdir()
    out.write_bytes(b"previous")
    (broken / SHARD2).unlink()
    r = run_convert(broken, out, "q8_0", check=False)
    assert r.returncode == 1
    assert out.read_bytes() == b"previous"
    assert leftovers(out.parent, "model.gguf.") == []


def test_usage_errors(ckpts, tmp_path):
    r = subprocess.run([smoe(), "convert", str(ckpts["f32"]), "-o", str(tmp_path / "x.gguf"), "--type", "q3"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "unknown type 'q3'" in r.stderr
    r = subprocess.run([smoe(), "convert", str(ckpts["f32"])], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr


# ---- (f) cancellation ----

PROGRESS = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p)
LOG = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


class ConvertParams(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("ftype", ctypes.c_int), ("n_threads", ctypes.c_int32),
                ("progress", PROGRESS), ("progress_user_data", ctypes.c_void_p), ("log", LOG),
                ("log_user_data", ctypes.c_void_p)]


def libsmoe():
    p = Path(BUILD) / "libsmoe.so"
    if not p.exists():
        pytest.skip(f"{p} not built")
    lib = ctypes.CDLL(str(p))
    lib.smoe_convert_default_params.restype = ConvertParams
    lib.smoe_convert.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ConvertParams)]
    lib.smoe_convert.restype = ctypes.c_int
    lib.smoe_last_error.restype = ctypes.c_char_p
    return lib


def test_cancel_via_progress(ckpts, tmp_path):
    lib = libsmoe()
    calls = []

    @PROGRESS
    def progress(done, total, _):
        calls.append((done, total))
        return len(calls) < 3

    p = lib.smoe_convert_default_params()
    assert p.size == ctypes.sizeof(ConvertParams) and p.ftype == 1024  # SMOE_FTYPE_AUTO
    p.progress = progress
    out = tmp_path / "cancel" / "m.gguf"
    out.parent.mkdir()
    st = lib.smoe_convert(str(ckpts["small"]).encode(), str(out).encode(), ctypes.byref(p))
    assert st == -8, lib.smoe_last_error()  # SMOE_ERR_CANCELLED
    assert len(calls) == 3 and calls[0] == (0, calls[0][1]) and calls[1][0] > 0
    assert list(out.parent.iterdir()) == []

    # uncancelled: progress is monotonic and ends at the total
    calls.clear()

    @PROGRESS
    def progress_all(done, total, _):
        calls.append((done, total))
        return True

    p.progress = progress_all
    p.ftype = 1  # f16
    assert lib.smoe_convert(str(ckpts["small"]).encode(), str(out).encode(), ctypes.byref(p)) == 0
    dones = [c[0] for c in calls]
    assert dones == sorted(dones) and dones[-1] == calls[-1][1] > 0
    GGUFReader(out)


def test_sigint_leaves_no_file(ckpts, tmp_path):
    out = tmp_path / "sigint" / "m.gguf"
    out.parent.mkdir()
    proc = subprocess.Popen([smoe(), "convert", str(ckpts["small"]), "-o", str(out), "--type", "q5_k_m", "-j", "1"],
                            stderr=subprocess.PIPE, text=True)
    # wait for the temporary file (the header is written, tensors are being converted), then interrupt
    deadline = time.time() + 20
    while time.time() < deadline and not leftovers(out.parent, "m.gguf.tmp") and proc.poll() is None:
        time.sleep(0.001)
    assert proc.poll() is None, "conversion finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert list(out.parent.iterdir()) == []


# ---- (g) bounded memory ----

def test_peak_rss_bounded(tmp_path):
    """Converting a 312 MB checkpoint keeps the peak resident set well below the input: the source is read through
    mmap and each tensor's pages are dropped once its rows are written (without that, RSS would reach the input
    size)."""
    d = generate(tmp_path / "rss", "--preset", "bench", "--layers", "1", "--dtype", "bf16", "--shards", "2")
    in_bytes = sum(p.stat().st_size for p in d.glob("*.safetensors"))
    assert in_bytes > 300e6
    probe = ("import resource, subprocess, sys; "
             "subprocess.run(sys.argv[1:], check=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    for t in ("f16", "q8_0"):
        out = subprocess.run([sys.executable, "-c", probe, smoe(), "convert", str(d), "-o", str(tmp_path / "o.gguf"),
                              "--type", t, "--quiet"], check=True, capture_output=True, text=True).stdout
        peak = int(out.split()[-1]) * 1024
        assert peak < 0.5 * in_bytes, (t, peak, in_bytes)
