"""A float64 numpy forward pass of a Mixtral GGUF (llama.cpp layout), independent of smoe's code.

Weights are dequantized with the `gguf` package; all math is float64. RoPE is llama.cpp's "normal" mode (adjacent
pairs), which is what GGUF's permuted attn_q/attn_k rows are stored for. Used by tests/python/test_model.py as the
reference for smoe's logits.
"""
import numpy as np
import gguf


class MixtralRef:
    def __init__(self, path):
        r = gguf.GGUFReader(path)
        arch = str(r.fields["general.architecture"].contents())

        def kv(key, default=None):
            f = r.fields.get(f"{arch}.{key}")
            return default if f is None else f.contents()

        self.n_layer = int(kv("block_count"))
        self.n_embd = int(kv("embedding_length"))
        self.n_head = int(kv("attention.head_count"))
        self.n_head_kv = int(kv("attention.head_count_kv", self.n_head))
        self.n_expert = int(kv("expert_count"))
        self.n_used = int(kv("expert_used_count"))
        self.head_dim = self.n_embd // self.n_head
        self.n_rot = int(kv("rope.dimension_count", self.head_dim))
        self.theta = float(kv("rope.freq_base", 10000.0))
        self.eps = float(kv("attention.layer_norm_rms_epsilon"))
        self.t = {}
        for t in r.tensors:
            a = gguf.quants.dequantize(t.data, t.tensor_type)
            # numpy shape is the reverse of ggml's ne: [..., ne1, ne0]
            self.t[t.name] = np.asarray(a, dtype=np.float64).reshape([int(x) for x in reversed(t.shape)])
        if "output.weight" not in self.t:
            self.t["output.weight"] = self.t["token_embd.weight"]

    def experts(self, il, kind):
        name = f"blk.{il}.ffn_{kind}_exps.weight"
        if name in self.t:
            return self.t[name]
        return np.stack([self.t[f"blk.{il}.ffn_{kind}.{e}.weight"] for e in range(self.n_expert)])

    def rms_norm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x, pos):
        # x [n, heads, head_dim]; pairs (2i, 2i+1) for 2i < n_rot rotate by pos * theta^(-2i/n_rot)
        x = x.copy()
        i = np.arange(self.n_rot // 2)
        freq = self.theta ** (-2.0 * i / self.n_rot)
        ang = np.asarray(pos, dtype=np.float64)[:, None] * freq[None, :]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        a, b = x[..., 0:self.n_rot:2].copy(), x[..., 1:self.n_rot:2].copy()
        x[..., 0:self.n_rot:2] = a * c - b * s
        x[..., 1:self.n_rot:2] = a * s + b * c
        return x

    def forward(self, tokens, return_router_margin=False):
        """Logits [n_tokens, n_vocab] of one sequence at positions 0..n-1 (causal)."""
        n = len(tokens)
        pos = np.arange(n)
        hd, H, Hkv = self.head_dim, self.n_head, self.n_head_kv
        x = self.t["token_embd.weight"][np.asarray(tokens)]
        margin = np.inf
        for il in range(self.n_layer):
            p = f"blk.{il}."
            h = self.rms_norm(x, self.t[p + "attn_norm.weight"])
            q = (h @ self.t[p + "attn_q.weight"].T).reshape(n, H, hd)
            k = (h @ self.t[p + "attn_k.weight"].T).reshape(n, Hkv, hd)
            v = (h @ self.t[p + "attn_v.weight"].T).reshape(n, Hkv, hd)
            q, k = self.rope(q, pos), self.rope(k, pos)
            out = np.zeros((n, H, hd))
            mask = np.tril(np.ones((n, n), dtype=bool))
            for hh in range(H):
                g = hh // (H // Hkv)
                sc = (q[:, hh, :] @ k[:, g, :].T) / np.sqrt(hd)
                sc = np.where(mask, sc, -np.inf)
                sc = np.exp(sc - sc.max(axis=1, keepdims=True))
                sc /= sc.sum(axis=1, keepdims=True)
                out[:, hh, :] = sc @ v[:, g, :]
            x = x + out.reshape(n, H * hd) @ self.t[p + "attn_output.weight"].T
            h = self.rms_norm(x, self.t[p + "ffn_norm.weight"])
            logits = h @ self.t[p + "ffn_gate_inp.weight"].T  # [n, n_expert]
            w1, w3, w2 = self.experts(il, "gate"), self.experts(il, "up"), self.experts(il, "down")
            y = np.zeros_like(x)
            for ti in range(n):
                order = np.argsort(-logits[ti], kind="stable")
                sel = order[: self.n_used]
                if self.n_used < self.n_expert:
                    margin = min(margin, logits[ti, order[self.n_used - 1]] - logits[ti, order[self.n_used]])
                wsel = np.exp(logits[ti, sel] - logits[ti, sel].max())
                wsel /= wsel.sum()
                for wgt, e in zip(wsel, sel):
                    a = w1[e] @ h[ti]
                    u = w3[e] @ h[ti]
                    y[ti] += wgt * (w2[e] @ (a / (1.0 + np.exp(-a)) * u))
            x = x + y
        x = self.rms_norm(x, self.t["output_norm.weight"])
        out = x @ self.t["output.weight"].T
        return (out, margin) if return_router_margin else out
