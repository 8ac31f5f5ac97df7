#!/usr/bin/env python3
"""Size and error of each `smoe convert --type` on generated Mixtral-shaped checkpoints (the numbers behind the
`auto` mix in bench/RESULTS.md).

For each checkpoint and type: the file size and bits per weight; the relative RMSE ||w - q|| / ||w|| of the
dequantized weights (gguf.quants) against the F32 conversion, per tensor class (experts, attention, router,
token_embd, output); and, through smoe's own forward pass (tests/model-logits), the logits of a ~100-token text
against those of the F32 file: relative RMS error, mean KL divergence of the softmax, and how often the argmax
agrees.

usage: bench/convert-quality.py BUILD_DIR WORK_DIR [TYPES...]   (python with numpy, gguf, sentencepiece and
       mistral-common, e.g. build/venv/bin/python)
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

SRC = Path(__file__).resolve().parents[1]
TEXT = ("The mixture of experts layer routes each token to two of eight feed-forward networks, so only a quarter "
        "of the expert weights are read per token. Quantizing those experts to four bits keeps the model small, "
        "while attention, which every token reads, keeps eight bits. Le routeur choisit deux experts par jeton.")
CLASSES = [("experts", ("_exps.",)), ("attention", ("attn_q.", "attn_k.", "attn_v.", "attn_output.")),
           ("router", ("ffn_gate_inp.",)), ("token_embd", ("token_embd.",)), ("output", ("output.weight",))]


def cls_of(name):
    for c, keys in CLASSES:
        if any(k in name for k in keys) and not (c == "output" and name != "output.weight"):
            return c
    return None


def tensors(path):
    r = GGUFReader(path)
    return {t.name: (t.tensor_type.name, dequantize(t.data, t.tensor_type).astype(np.float64)) for t in r.tensors}


def logits(build, path, ids, out):
    subprocess.run([str(Path(build) / "tests" / "model-logits"), str(path), str(out), *map(str, ids)], check=True,
                   capture_output=True)
    return np.fromfile(out, dtype=np.float32).reshape(len(ids), -1).astype(np.float64)


def main():
    build, work = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    types = sys.argv[3:] or ["f16", "bf16", "q8_0", "q5_k_m", "q4_k_m", "q4_0", "auto"]
    work.mkdir(parents=True, exist_ok=True)
    import sentencepiece
    ckpts = {"tiny (hidden 64, 4 experts, f32)": ["--preset", "tiny", "--dtype", "f32"],
             "small (hidden 256, 8 experts, f16)": ["--preset", "small", "--dtype", "f16"]}
    for label, args in ckpts.items():
        d = work / label.split()[0]
        if not (d / "config.json").exists():
            subprocess.run([sys.executable, str(SRC / "tests/gen/gen_tiny_mixtral.py"), str(d), *args], check=True,
                           capture_output=True)
        sp = sentencepiece.SentencePieceProcessor(model_file=str(d / "tokenizer.model"))
        ids = [1] + sp.encode(TEXT)
        smoe = str(build / "tools" / "smoe")
        ref_path = work / f"{d.name}-f32.gguf"
        subprocess.run([smoe, "convert", str(d), "-o", str(ref_path), "--type", "f32", "-q"], check=True)
        ref = tensors(ref_path)
        ref_logits = logits(build, ref_path, ids, work / "ref.logits")
        n_weights = sum(v[1].size for v in ref.values())
        print(f"\n### {label}: {n_weights / 1e6:.1f} M weights, {len(ids)} tokens of text\n")
        print("| type | MB | bits/weight | experts | attention | router | token_embd | output "
              "| logits rel. RMS | mean KL | top-1 agree |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for t in types:
            p = work / f"{d.name}-{t}.gguf"
            subprocess.run([smoe, "convert", str(d), "-o", str(p), "--type", t, "-q"], check=True)
            q = tensors(p)
            err = {}
            for c, _ in CLASSES:
                names = [n for n in ref if cls_of(n) == c]
                num = sum(np.sum((ref[n][1] - q[n][1]) ** 2) for n in names)
                den = sum(np.sum(ref[n][1] ** 2) for n in names)
                kinds = sorted({q[n][0].lower() for n in names})
                err[c] = f"{np.sqrt(num / den):.4f} ({'/'.join(kinds)})" if den else "-"
            lg = logits(build, p, ids, work / "q.logits")
            rel = np.sqrt(np.sum((lg - ref_logits) ** 2) / np.sum(ref_logits ** 2))
            lp = ref_logits - ref_logits.max(1, keepdims=True)
            lp = lp - np.log(np.exp(lp).sum(1, keepdims=True))
            lq = lg - lg.max(1, keepdims=True)
            lq = lq - np.log(np.exp(lq).sum(1, keepdims=True))
            kl = np.mean(np.sum(np.exp(lp) * (lp - lq), axis=1))
            agree = np.mean(lg.argmax(1) == ref_logits.argmax(1))
            size = p.stat().st_size
            print(f"| {t} | {size / 1e6:.2f} | {8 * size / n_weights:.2f} | " +
                  " | ".join(err[c] for c, _ in CLASSES) + f" | {rel:.4f} | {kl:.2e} | {agree:.1%} |")
            p.unlink()
        ref_path.unlink()


if __name__ == "__main__":
    main()
