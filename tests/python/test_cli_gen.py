"""`smoe chat`, `smoe run` sampling options, the embedding example, and the installed library (header, pkg-config).

Uses the tiny reference checkpoint of test_e2e.py (generated and converted there, shared through the build dir).
"""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from test_e2e import BUILD, ROOT, SMOE, converted, ref

EMBED = os.path.join(BUILD, "tests", "embed")


def test_run_seed_reproducible_and_sensitive():
    model = converted("tiny", "q8_0")
    base = [SMOE, "run", "-m", model, "-p", "Once upon a time", "-n", "24", "--temp", "0.9", "--top-k", "50",
            "--top-p", "0.9", "--min-p", "0.02", "--repeat-penalty", "1.1", "-c", "128"]
    a = subprocess.run(base + ["--seed", "1"], capture_output=True)
    b = subprocess.run(base + ["--seed", "1"], capture_output=True)
    c = subprocess.run(base + ["--seed", "2"], capture_output=True)
    assert a.returncode == b.returncode == c.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    assert a.stdout != c.stdout


def test_run_stop_string():
    model = converted("tiny", "f32")
    meta, _ = ref("tiny", "en")
    full = subprocess.run([SMOE, "run", "-m", model, "-p", meta["prompt"], "-n", "16", "--temp", "0", "-c", "128"],
                          capture_output=True, text=True)
    assert full.returncode == 0
    cont = full.stdout[len(meta["prompt"]):].rstrip("\n")
    assert len(cont) > 8
    stop = cont[4:7]  # a stop string that begins mid-continuation (likely inside a token)
    r = subprocess.run([SMOE, "run", "-m", model, "-p", meta["prompt"], "-n", "16", "--temp", "0", "-c", "128",
                        "--stop", stop], capture_output=True, text=True)
    assert r.returncode == 0
    assert r.stdout.rstrip("\n") == meta["prompt"] + cont[:cont.index(stop)]


def test_chat_two_turns_and_ctrl_c():
    model = converted("tiny", "q8_0")
    p = subprocess.Popen([SMOE, "chat", "-m", model, "--temp", "0", "-n", "20000", "-c", "24000", "--ignore-eos"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write("Bonjour, comment ça va ?\n".encode())
        p.stdin.flush()
        time.sleep(1.5)  # a long reply is streaming: Ctrl-C stops the reply, not the program
        p.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert p.poll() is None, "Ctrl-C ended the program instead of the reply"
        p.stdin.write(b"Second message\n")
        p.stdin.flush()
        time.sleep(1.5)
        p.send_signal(signal.SIGINT)
        time.sleep(0.5)
        out, err = p.communicate(timeout=60)  # closes stdin: EOF at the prompt ends the program normally
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err.decode()
    assert err.decode().count("generation:") == 2, err.decode()
    assert err.decode().count("[stopped]") == 2


def test_chat_matches_run_chat():
    """The first reply of `smoe chat` equals `smoe run --chat` with the same system prompt (greedy)."""
    model = converted("tiny", "q8_0")
    args = ["-m", model, "--temp", "0", "-n", "12", "-c", "256"]
    r = subprocess.run([SMOE, "run", "--chat", "--system", "Be brief.", "-p", "What is MoE?"] + args,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    c = subprocess.run([SMOE, "chat", "--system", "Be brief."] + args, input="What is MoE?\n",
                       capture_output=True, text=True)
    assert c.returncode == 0, c.stderr
    assert r.stdout.strip() in c.stdout and r.stdout.strip()


def test_embed_example_runs():
    model = converted("tiny", "q8_0")
    r = subprocess.run([EMBED, model, "Why is the sky blue?", "16"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() and "16 generated" in r.stderr or "generated" in r.stderr
    r = subprocess.run([EMBED, os.path.join(BUILD, "does-not-exist.gguf"), "hi"], capture_output=True, text=True)
    assert r.returncode == 1 and "i/o error" in r.stderr


def test_installed_header_and_pkg_config(tmp_path):
    """meson install into a staging dir, then build examples/embed.c with `pkg-config smoe` like a user would."""
    dest = tmp_path / "stage"
    r = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", str(dest), "--no-rebuild", "--quiet"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    pcs = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs if f == "smoe.pc"]
    headers = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs if f == "smoe.h"]
    assert len(pcs) == 1 and len(headers) == 1
    # only the public header is installed
    inc_dir = os.path.dirname(headers[0])
    assert sorted(os.listdir(inc_dir)) == ["smoe.h"]
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]), PKG_CONFIG_SYSROOT_DIR=str(dest))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "smoe"], capture_output=True, text=True, env=env)
    assert flags.returncode == 0, flags.stderr
    exe = tmp_path / "embed"
    cc = subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", os.path.join(ROOT, "examples", "embed.c"),
                         "-o", str(exe)] + flags.stdout.split(), capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    libdir = [a[2:] for a in flags.stdout.split() if a.startswith("-L")]
    model = converted("tiny", "q8_0")
    r = subprocess.run([str(exe), model, "Hello", "8"], capture_output=True, text=True,
                       env=dict(os.environ, LD_LIBRARY_PATH=":".join(libdir)))
    assert r.returncode == 0, r.stderr
    # the installed library is the one that ran
    ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True,
                         env=dict(os.environ, LD_LIBRARY_PATH=":".join(libdir)))
    assert str(dest) in ldd.stdout
