#!/usr/bin/env python3
"""Writes a deterministic, tiny Mixtral-shaped Hugging Face checkpoint: the test input of the converter and of the
transformers reference.

The folder gets what a real Mixtral checkpoint has: config.json (MixtralForCausalLM), generation_config.json,
sharded *.safetensors (written with the PyPI `safetensors` package) with model.safetensors.index.json,
tokenizer.model (the real Mixtral v1 SentencePiece model, taken from the PyPI `mistral-common` package) and
tokenizer_config.json with the chat template.

Weights come from numpy's PCG64 generator seeded by --seed, so the same arguments give the same bytes. Their scales
keep activations O(1) through the layers and spread the logits (std ~8) so greedy decoding has clear winners.

usage: gen_tiny_mixtral.py OUT_DIR [--preset tiny|small|bench] [--hidden N ...] [--dtype f32|f16|bf16]
                                   [--shards N] [--seed S]
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import safetensors

PRESETS = {
    # name: hidden, layers, heads, kv_heads, experts, used, ffn
    "tiny": dict(hidden=64, layers=2, heads=4, kv_heads=2, experts=4, used=2, ffn=128),
    "small": dict(hidden=256, layers=4, heads=8, kv_heads=2, experts=8, used=2, ffn=512),
    # >= 1 GB at f16, for benchmarks (hidden 1024, 8 experts, top-2)
    "bench": dict(hidden=1024, layers=8, heads=8, kv_heads=2, experts=8, used=2, ffn=3584),
}

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)


def checkpoint_sha256(folder):
    """SHA-256 over the folder's *.safetensors files in name order: identifies a generated checkpoint (the
    transformers reference records it; the tests check the generator still reproduces it)."""
    import hashlib
    h = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors"):
            with open(os.path.join(folder, name), "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def mistral_tokenizer_path():
    import mistral_common

    p = os.path.join(os.path.dirname(mistral_common.__file__), "data", "tokenizer.model.v1")
    if not os.path.exists(p):
        sys.exit(f"gen_tiny_mixtral: {p} not found (is mistral-common installed?)")
    return p


def f32_to_bf16_bits(a):
    """Round-to-nearest-even float32 -> bfloat16 bit patterns (uint16)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return np.ascontiguousarray(u.astype(np.uint16))


def make_tensors(cfg, rng, res_gain):
    h, nl, nh, nkv, ne, ffn, vocab = (cfg[k] for k in ("hidden", "layers", "heads", "kv_heads", "experts", "ffn",
                                                          "vocab"))
    hd = h // nh

    def lin(out_f, in_f, gain=1.0):
        return (rng.standard_normal((out_f, in_f), dtype=np.float32) * (gain / np.sqrt(in_f))).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)

    t = {}
    t["model.embed_tokens.weight"] = rng.standard_normal((vocab, h), dtype=np.float32)
    for i in range(nl):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = norm(h)
        t[p + "self_attn.q_proj.weight"] = lin(nh * hd, h, 2.0)
        t[p + "self_attn.k_proj.weight"] = lin(nkv * hd, h, 2.0)
        t[p + "self_attn.v_proj.weight"] = lin(nkv * hd, h)
        t[p + "self_attn.o_proj.weight"] = lin(h, nh * hd, res_gain)
        t[p + "post_attention_layernorm.weight"] = norm(h)
        t[p + "block_sparse_moe.gate.weight"] = lin(ne, h, 2.0)
        for j in range(ne):
            e = p + f"block_sparse_moe.experts.{j}."
            t[e + "w1.weight"] = lin(ffn, h)
            t[e + "w2.weight"] = lin(h, ffn, res_gain)
            t[e + "w3.weight"] = lin(ffn, h)
    t["model.norm.weight"] = norm(h)
    t["lm_head.weight"] = lin(vocab, h, 8.0)
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    for k in ("hidden", "layers", "heads", "kv_heads", "experts", "used", "ffn"):
        ap.add_argument("--" + k.replace("_", "-"), type=int)
    ap.add_argument("--vocab", type=int, default=32000, help="must be 32000 with the real tokenizer")
    ap.add_argument("--dtype", choices=("f32", "f16", "bf16"), default="f32")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rope-theta", type=float, default=1e6)
    ap.add_argument("--ctx", type=int, default=32768)
    ap.add_argument("--residual-gain", type=float, default=1.0,
                    help="scale of the matrices writing into the residual stream (o_proj, w2)")
    a = ap.parse_args()

    cfg = dict(PRESETS[a.preset])
    for k in ("hidden", "layers", "heads", "kv_heads", "experts", "used", "ffn"):
        if getattr(a, k) is not None:
            cfg[k] = getattr(a, k)
    cfg["vocab"] = a.vocab
    if cfg["hidden"] % cfg["heads"] or cfg["heads"] % cfg["kv_heads"]:
        sys.exit("gen_tiny_mixtral: hidden must divide by heads, heads by kv_heads")

    os.makedirs(a.out, exist_ok=True)
    rng = np.random.Generator(np.random.PCG64(a.seed))
    tensors = make_tensors(cfg, rng, a.residual_gain)

    dt = {"f32": ("float32", np.float32), "f16": ("float16", np.float16), "bf16": ("bfloat16", None)}[a.dtype]
    names = list(tensors)
    n_shards = max(1, min(a.shards, len(names)))
    per = (len(names) + n_shards - 1) // n_shards
    weight_map, total = {}, 0
    for s in range(n_shards):
        part = names[s * per:(s + 1) * per]
        if not part:
            continue
        fname = (f"model-{s + 1:05d}-of-{n_shards:05d}.safetensors" if n_shards > 1 else "model.safetensors")
        entries, keep = {}, []
        for n in part:
            arr = tensors[n]
            data = f32_to_bf16_bits(arr) if dt[1] is None else np.ascontiguousarray(arr.astype(dt[1]))
            keep.append(data)
            entries[n] = safetensors.TensorSpec(dtype=dt[0], shape=arr.shape, data_ptr=data.ctypes.data,
                                                data_len=data.nbytes)
            weight_map[n] = fname
            total += data.nbytes
        # The package's generic writer (safetensors.numpy has no bfloat16): same file format, same code path.
        safetensors.serialize_file(entries, os.path.join(a.out, fname), metadata={"format": "pt"})
    if n_shards > 1:
        with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    elif os.path.exists(os.path.join(a.out, "model.safetensors.index.json")):
        os.remove(os.path.join(a.out, "model.safetensors.index.json"))

    torch_dtype = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[a.dtype]
    config = {
        "architectures": ["MixtralForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": cfg["hidden"],
        "initializer_range": 0.02,
        "intermediate_size": cfg["ffn"],
        "max_position_embeddings": a.ctx,
        "model_type": "mixtral",
        "num_attention_heads": cfg["heads"],
        "num_experts_per_tok": cfg["used"],
        "num_hidden_layers": cfg["layers"],
        "num_key_value_heads": cfg["kv_heads"],
        "num_local_experts": cfg["experts"],
        "output_router_logits": False,
        "rms_norm_eps": 1e-05,
        "rope_theta": a.rope_theta,
        "router_aux_loss_coef": 0.02,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": torch_dtype,
        "use_cache": True,
        "vocab_size": cfg["vocab"],
    }
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(a.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": 2}, f, indent=2)
    tok_cfg = {
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": None,
        "legacy": True,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_max_length": a.ctx,
        "tokenizer_class": "LlamaTokenizer",
        "sp_model_kwargs": {},
        "spaces_between_special_tokens": False,
        "use_default_system_prompt": False,
    }
    with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
        json.dump(tok_cfg, f, indent=2)
    with open(os.path.join(a.out, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}, f, indent=2)
    shutil.copyfile(mistral_tokenizer_path(), os.path.join(a.out, "tokenizer.model"))
    print(f"gen_tiny_mixtral: wrote {a.out} ({a.preset}, {a.dtype}, {n_shards} shard(s), {total / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
