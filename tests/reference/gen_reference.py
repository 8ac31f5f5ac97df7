#!/usr/bin/env python3
"""Generates the transformers reference for the end-to-end tests (run once; its output is committed).

For each tiny checkpoint made by tests/gen/gen_tiny_mixtral.py (F32, seed 7) it runs Hugging Face transformers'
MixtralForCausalLM on the CPU in float32 (eager attention) and writes, per prompt (five languages and code):
  <model>/<prompt>.logits.f32   last prompt position logits, raw little-endian float32 [vocab]
  <model>/<prompt>.json         prompt ids (SentencePiece, BOS added), 32 greedy ids (argmax, EOS not stopping)
                                with the top-5 (id, logit) at each step, the prompt's summed NLL
Each step also records `router_margin`: the smallest gap, over layers, between the n_used-th and the next router
logit at the position that predicts it. Where it is tiny, any rounding of the weights may flip an expert choice and
so the token: tests skip such steps when comparing quantized models with this float32 reference. And, per prompt,
`f16w`: the same run with every matrix rounded to float16 (norms and router kept float32, as GGUF F16 files do),
an independent reference for F16 models.
It also records a SHA-256 of every generated checkpoint's safetensors files, so a test can tell a changed generator
(different weights) from a numerical regression.

This script needs torch and transformers, which CI does not install: run it in a separate venv, e.g.
  python3 -m venv /opt/refvenv && /opt/refvenv/bin/pip install torch transformers safetensors numpy sentencepiece \
      mistral-common
  /opt/refvenv/bin/python tests/reference/gen_reference.py
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import sentencepiece as spm
import torch
from transformers import MixtralForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "gen"))
from gen_tiny_mixtral import checkpoint_sha256  # noqa: E402

# name -> generator arguments
MODELS = {
    # residual gain 0.25: each layer nudges the residual stream rather than replacing it, so (as in a trained model)
    # rounding the weights perturbs the output a little instead of chaotically; every layer still shows in the logits
    "tiny": ["--preset", "tiny", "--dtype", "f32", "--seed", "7", "--shards", "2", "--residual-gain", "0.25"],
    "small": ["--preset", "small", "--dtype", "f32", "--seed", "7", "--shards", "3", "--residual-gain", "0.25"],
}

PROMPTS = {
    "en": "The history of the printing press begins in the fifteenth century, when Johannes Gutenberg",
    "fr": "Quelle est la capitale de la France, et pourquoi est-elle célèbre ? Elle est connue pour",
    "it": "La pizza margherita è stata inventata a Napoli nel 1889 in onore della regina",
    "de": "Die Straßenbahn fährt über die Brücke, während die Möwen über dem Fluss kreisen und",
    "es": "El niño corrió hacia la playa para ver cómo el sol se escondía detrás de las montañas",
    "code": "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n",
    "long": " ".join(
        [
            "In the beginning the engineers wrote a small runtime for a sparse mixture of experts.",
            "Each layer routes every token to two of eight experts, and the router is a tiny matrix.",
            "Les ingénieurs ont mesuré la bande passante mémoire et le débit de chaque noyau.",
            "Gli esperti vengono scelti per ogni token, e i pesi sono quantizzati a quattro bit.",
            "Der Speicher reicht nicht für alle Experten, also bleiben einige im Hauptspeicher.",
            "Los resultados se comparan con una referencia independiente en cada paso.",
        ]
        * 4
    ),
}

N_GREEDY = 32


def greedy(model, ids, margins):
    """Logits of every prompt position, the last one, and N_GREEDY greedy steps (KV cache) with top-5 and router
    margins (the router hook sees the rows of the newest tokens; the last row is the predicting position)."""
    margins.clear()
    out = model(torch.tensor([ids], dtype=torch.long), use_cache=True)
    logits = out.logits[0].float()
    cache = out.past_key_values
    last, step_logits = logits[-1].clone(), logits[-1]
    res, top5, rm = [], [], []
    for _ in range(N_GREEDY):
        rm.append(min(margins))
        vals, idx = torch.topk(step_logits, 5)
        top5.append([[int(i), float(v)] for v, i in zip(vals, idx)])
        nxt = int(torch.argmax(step_logits))
        res.append(nxt)
        margins.clear()
        out = model(torch.tensor([[nxt]], dtype=torch.long), past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        step_logits = out.logits[0, -1].float()
    return logits, last, res, top5, rm


@torch.no_grad()
def run_model(model_dir, out_dir, sp):
    model = MixtralForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    n_used = model.config.num_experts_per_tok
    margins = []

    def hook(mod, inp, out):
        r = (out[0] if isinstance(out, tuple) else out)[-1]
        s = torch.sort(r.float(), descending=True).values
        margins.append(float(s[n_used - 1] - s[n_used]))

    for layer in model.model.layers:
        layer.mlp.gate.register_forward_hook(hook)
    os.makedirs(out_dir, exist_ok=True)
    recs = {}
    for name, text in PROMPTS.items():
        ids = [sp.bos_id()] + sp.encode(text)
        logits, last, out, top5, rm = greedy(model, ids, margins)
        last.numpy().astype("<f4").tofile(os.path.join(out_dir, name + ".logits.f32"))
        logp = torch.log_softmax(logits[:-1], dim=-1)
        nll = -logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum().item()
        recs[name] = {
            "prompt": text,
            "n_vocab": int(last.shape[0]),
            "prompt_tokens": ids,
            "greedy_tokens": out,
            "greedy_top5": top5,
            "router_margin": rm,
            "prompt_nll": nll,
        }
        print(f"  {name}: {len(ids)} prompt tokens, greedy {out[:6]}..., min router margin {min(rm):.4f}")
    # the same with matrices rounded to float16 (what a GGUF F16 file holds)
    for n, p in model.named_parameters():
        if "norm" not in n and ".mlp.gate." not in n:
            p.copy_(p.half().float())
    for name, rec in recs.items():
        _, last, out, top5, rm = greedy(model, rec["prompt_tokens"], margins)
        last.numpy().astype("<f4").tofile(os.path.join(out_dir, name + ".f16w.logits.f32"))
        rec["f16w"] = {"greedy_tokens": out, "greedy_top5": top5, "router_margin": rm}
        with open(os.path.join(out_dir, name + ".json"), "w") as f:
            json.dump(rec, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "data"))
    ap.add_argument("--python", default=sys.executable, help="python with numpy + safetensors + mistral-common")
    a = ap.parse_args()
    torch.manual_seed(0)
    manifest = {"transformers": __import__("transformers").__version__, "torch": torch.__version__, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for mname, gen_args in MODELS.items():
            mdir = os.path.join(tmp, mname)
            subprocess.run([a.python, os.path.join(ROOT, "tests", "gen", "gen_tiny_mixtral.py"), mdir] + gen_args,
                           check=True)
            sp = spm.SentencePieceProcessor(model_file=os.path.join(mdir, "tokenizer.model"))
            print(f"{mname}:")
            run_model(mdir, os.path.join(a.out, mname), sp)
            manifest["models"][mname] = {"generator_args": gen_args, "safetensors_sha256": checkpoint_sha256(mdir)}
    manifest["prompts"] = sorted(PROMPTS)
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
