#!/usr/bin/env python3
"""Generates the transformers reference for the end-to-end tests (run once; its output is committed).

For each tiny checkpoint made by tests/gen/gen_tiny_mixtral.py (F32, seed 7) it runs Hugging Face transformers'
MixtralForCausalLM on the CPU in float32 (eager attention) and writes, per prompt (five languages and code):
  <model>/<prompt>.logits.f32   last prompt position logits, raw little-endian float32 [vocab]
  <model>/<prompt>.json         prompt ids (SentencePiece, BOS added), 32 greedy ids (argmax, EOS not stopping)
                                with the top-5 (id, logit) at each step, the prompt's summed NLL
It also records a SHA-256 of every generated checkpoint's safetensors files, so a test can tell a changed generator
(different weights) from a numerical regression.

This script needs torch and transformers, which CI does not install: run it in a separate venv, e.g.
  python3 -m venv /opt/refvenv && /opt/refvenv/bin/pip install torch transformers safetensors numpy sentencepiece \
      mistral-common
  /opt/refvenv/bin/python tests/reference/gen_reference.py
"""
import argparse
import hashlib
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

# name -> generator arguments
MODELS = {
    "tiny": ["--preset", "tiny", "--dtype", "f32", "--seed", "7", "--shards", "2"],
    "small": ["--preset", "small", "--dtype", "f32", "--seed", "7", "--shards", "3"],
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


def sha256_files(folder):
    h = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors"):
            with open(os.path.join(folder, name), "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


@torch.no_grad()
def run_model(model_dir, out_dir, sp):
    model = MixtralForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    os.makedirs(out_dir, exist_ok=True)
    for name, text in PROMPTS.items():
        ids = [sp.bos_id()] + sp.encode(text)
        x = torch.tensor([ids], dtype=torch.long)
        out = model(x)
        logits = out.logits[0].float()
        last = logits[-1].numpy().astype("<f4")
        last.tofile(os.path.join(out_dir, name + ".logits.f32"))
        logp = torch.log_softmax(logits[:-1], dim=-1)
        nll = -logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum().item()

        seq = list(ids)
        greedy, top5 = [], []
        step_logits = logits[-1]
        for _ in range(N_GREEDY):
            vals, idx = torch.topk(step_logits, 5)
            top5.append([[int(i), float(v)] for v, i in zip(vals, idx)])
            nxt = int(torch.argmax(step_logits))
            greedy.append(nxt)
            seq.append(nxt)
            step_logits = model(torch.tensor([seq], dtype=torch.long)).logits[0, -1].float()
        rec = {
            "prompt": text,
            "n_vocab": int(last.shape[0]),
            "prompt_tokens": ids,
            "greedy_tokens": greedy,
            "greedy_top5": top5,
            "prompt_nll": nll,
        }
        with open(os.path.join(out_dir, name + ".json"), "w") as f:
            json.dump(rec, f, indent=1)
        print(f"  {name}: {len(ids)} prompt tokens, greedy {greedy[:6]}...")


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
            manifest["models"][mname] = {"generator_args": gen_args, "safetensors_sha256": sha256_files(mdir)}
    manifest["prompts"] = sorted(PROMPTS)
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
