"""Writes a small, deterministic, Mixtral-shaped GGUF file with the `gguf` package (for `smoe info` in the main job).

usage: python tests/gen/gen_demo_gguf.py OUT.gguf
Weights are random (seeded) and tiny: 2 layers, 4 experts (2 used), 64-wide, a 512-token vocabulary; f32 norms,
f16 embeddings, q8_0 attention and q4_0 experts, laid out with llama.cpp's tensor names.
"""
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT

N_LAYER, N_EMBD, N_FF, N_HEAD, N_HEAD_KV, N_EXPERT, N_VOCAB = 2, 64, 128, 4, 2, 4, 512


def main(path):
    rng = np.random.default_rng(2024)
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_name("smoe demo (random weights)")
    w.add_block_count(N_LAYER)
    w.add_context_length(4096)
    w.add_embedding_length(N_EMBD)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_freq_base(1e6)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_expert_count(N_EXPERT)
    w.add_expert_used_count(2)
    w.add_vocab_size(N_VOCAB)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_tokenizer_model("llama")
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    tokens += [f"▁tok{i}" for i in range(N_VOCAB - len(tokens))]
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * 3 + [0.0] * 256 + [-float(i) for i in range(N_VOCAB - 259)])
    w.add_token_types([3, 3, 3] + [6] * 256 + [1] * (N_VOCAB - 259))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)

    def normal(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    def q(name, arr, qt):
        w.add_tensor(name, gguf.quants.quantize(arr, qt), raw_dtype=qt)

    w.add_tensor("token_embd.weight", normal(N_VOCAB, N_EMBD).astype(np.float16))
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    q("output.weight", normal(N_VOCAB, N_EMBD), QT.Q8_0)
    head_dim = N_EMBD // N_HEAD
    for i in range(N_LAYER):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        q(f"blk.{i}.attn_q.weight", normal(N_EMBD, N_EMBD), QT.Q8_0)
        q(f"blk.{i}.attn_k.weight", normal(N_HEAD_KV * head_dim, N_EMBD), QT.Q8_0)
        q(f"blk.{i}.attn_v.weight", normal(N_HEAD_KV * head_dim, N_EMBD), QT.Q8_0)
        q(f"blk.{i}.attn_output.weight", normal(N_EMBD, N_EMBD), QT.Q8_0)
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate_inp.weight", normal(N_EXPERT, N_EMBD))
        q(f"blk.{i}.ffn_gate_exps.weight", normal(N_EXPERT, N_FF, N_EMBD), QT.Q4_0)
        q(f"blk.{i}.ffn_up_exps.weight", normal(N_EXPERT, N_FF, N_EMBD), QT.Q4_0)
        q(f"blk.{i}.ffn_down_exps.weight", normal(N_EXPERT, N_EMBD, N_FF), QT.Q4_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
