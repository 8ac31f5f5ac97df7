"""smoe's tokenizer against the references: `sentencepiece` (ids, decode) and `mistral-common` (chat ids).

The vocabulary is the real Mixtral tokenizer, tokenizer.model.v1 shipped in the mistral_common package. It reaches
smoe two ways: as a GGUF written here with the `gguf` package from sentencepiece's own view of the model (pieces,
scores, types), and as the .model file read by smoe's own protobuf reader (convert/spm-model.c). Every corpus line
goes through both. smoe is driven by build/tests/tokenizer-tool, which handles many cases per process.
Nothing is compared with smoe's own earlier output.
"""
import glob
import json
import os
import random
import subprocess

import pytest

sentencepiece = pytest.importorskip("sentencepiece")
gguf = pytest.importorskip("gguf")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SMOE_BUILD_DIR", os.path.join(ROOT, "build"))
TOOL = os.path.join(BUILD, "tests", "tokenizer-tool")
DATA = os.path.join(ROOT, "tests", "data")

T_NORMAL, T_UNKNOWN, T_CONTROL, T_USER, T_UNUSED, T_BYTE = 1, 2, 3, 4, 5, 6
ERR_INVALID_ARGUMENT, ERR_INVALID_TEXT = -1, -9


def model_path():
    import mistral_common

    paths = glob.glob(os.path.join(os.path.dirname(mistral_common.__file__), "data", "tokenizer.model.v1"))
    if not paths:
        pytest.skip("mistral_common has no data/tokenizer.model.v1")
    return paths[0]


@pytest.fixture(scope="module")
def sp():
    return sentencepiece.SentencePieceProcessor(model_file=model_path())


def sp_types(sp):
    types = []
    for i in range(sp.get_piece_size()):
        if sp.IsUnknown(i):
            types.append(T_UNKNOWN)
        elif sp.IsControl(i):
            types.append(T_CONTROL)
        elif sp.IsUnused(i):
            types.append(T_UNUSED)
        elif sp.IsByte(i):
            types.append(T_BYTE)
        else:
            types.append(T_NORMAL)
    return types


MIXTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)


@pytest.fixture(scope="module")
def vocab_gguf(sp, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tok") / "vocab-v1.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model("llama")
    n = sp.get_piece_size()
    w.add_token_list([sp.id_to_piece(i).encode("utf-8") for i in range(n)])
    w.add_token_scores([sp.get_score(i) for i in range(n)])
    w.add_token_types(sp_types(sp))
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(MIXTRAL_TEMPLATE)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def run_tool(src, cmd, lines, *opts):
    if not os.path.exists(TOOL):
        pytest.fail(f"{TOOL} is missing: build smoe first (SMOE_BUILD_DIR={BUILD})")
    flag = "-g" if src.endswith(".gguf") else "-s"
    inp = "".join(line + "\n" for line in lines).encode()
    r = subprocess.run([TOOL, flag, src, cmd, *opts], input=inp, capture_output=True, timeout=600)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    out = [json.loads(x) for x in r.stdout.decode().splitlines()]
    assert len(out) == len(lines), f"{len(out)} results for {len(lines)} inputs"
    return out


def encode(src, cases, *opts):
    """cases: list of str or bytes."""
    hexes = [(c.encode("utf-8") if isinstance(c, str) else c).hex() for c in cases]
    return run_tool(src, "encode", hexes, *opts)


def load_corpus():
    with open(os.path.join(DATA, "tokenizer-corpus.txt"), encoding="utf-8", newline="\n") as f:
        lines = f.read().split("\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    with open(os.path.join(DATA, "tokenizer-corpus-ctrl.jsonl"), encoding="utf-8") as f:
        ctrl = [json.loads(x) for x in f.read().split("\n") if x]
    return lines + ctrl


@pytest.fixture(scope="module")
def corpus():
    c = load_corpus()
    assert len(c) >= 2000
    return c


def show(s, n=80):
    r = repr(s)
    return r if len(r) <= n else r[: n - 3] + "..."


def check_corpus(sp, src, corpus):
    res = encode(src, corpus)
    bad = []
    n_roundtrip = 0
    for i, (text, r) in enumerate(zip(corpus, res)):
        ref = sp.encode(text)
        if "ids" not in r:
            bad.append(f"line {i} {show(text)}: error {r}")
            continue
        if r["ids"] != ref:
            k = next((j for j, (a, b) in enumerate(zip(r["ids"], ref)) if a != b), min(len(r["ids"]), len(ref)))
            bad.append(f"line {i} {show(text)}: ids differ at {k}: smoe {r['ids'][k:k + 8]} "
                       f"{[sp.id_to_piece(x) for x in r['ids'][k:k + 8] if x < sp.get_piece_size()]} "
                       f"sentencepiece {ref[k:k + 8]} {[sp.id_to_piece(x) for x in ref[k:k + 8]]}")
            continue
        dec = bytes.fromhex(r["dec"]).decode("utf-8")
        stream = bytes.fromhex(r["stream"]).decode("utf-8")
        ref_dec = sp.decode(ref)
        if dec != ref_dec:
            bad.append(f"line {i} {show(text)}: decode {show(dec)} != sentencepiece {show(ref_dec)}")
        elif stream != dec:
            bad.append(f"line {i} {show(text)}: streamed decode {show(stream)} != {show(dec)}")
        elif ref_dec == text:
            n_roundtrip += 1
            assert dec == text
    assert not bad, f"{len(bad)} of {len(corpus)} lines differ:\n" + "\n".join(bad[:40])
    return n_roundtrip


def test_corpus_gguf(sp, vocab_gguf, corpus):
    n = check_corpus(sp, vocab_gguf, corpus)
    # most lines round-trip exactly (the others have leading spaces that sentencepiece's decode drops)
    assert n > len(corpus) * 0.9


def test_corpus_spm_reader(sp, corpus):
    check_corpus(sp, model_path(), corpus)


def test_vocab_views(sp, vocab_gguf):
    """smoe's reading of the GGUF and of the .model file equals sentencepiece's view of the model."""
    n = sp.get_piece_size()
    types = sp_types(sp)
    for src in (vocab_gguf, model_path()):
        flag = "-g" if src.endswith(".gguf") else "-s"
        r = subprocess.run([TOOL, flag, src, "vocab"], capture_output=True, check=True)
        rows = [json.loads(x) for x in r.stdout.decode().splitlines()]
        head, rows = rows[0], rows[1:]
        assert head == {"n_vocab": n, "bos": sp.bos_id(), "eos": sp.eos_id(), "unk": sp.unk_id(), "flags": 1}
        assert len(rows) == n
        for i, row in enumerate(rows):
            assert bytes.fromhex(row["piece"]).decode() == sp.id_to_piece(i), i
            assert row["score"] == pytest.approx(sp.get_score(i), rel=1e-7, abs=0), i
            assert row["type"] == types[i], i


def test_flags(sp, vocab_gguf):
    texts = ["Hello world", "", " x", "<s> not special"]
    for opts, pre, post in [(("--bos",), [1], []), (("--eos",), [], [2]), (("--bos", "--eos"), [1], [2])]:
        for text, r in zip(texts, encode(vocab_gguf, texts, *opts)):
            assert r["ids"] == pre + sp.encode(text) + post, (opts, text)


def split_special(text, specials=("</s>", "<unk>", "<s>")):
    """Reference for SMOE_TOKENIZE_PARSE_SPECIAL: control pieces become their ids, the text between is encoded
    fragment by fragment (each as its own sentencepiece call)."""
    out, frag, i = [], [], 0
    while i < len(text):
        m = next((s for s in sorted(specials, key=len, reverse=True) if text.startswith(s, i)), None)
        if m:
            out.append(("".join(frag), m))
            frag = []
            i += len(m)
        else:
            frag.append(text[i])
            i += 1
    out.append(("".join(frag), None))
    return out


def test_parse_special(sp, vocab_gguf, corpus):
    cases = [c for c in corpus if "<" in c] + [
        "<s>[INST] hi [/INST] Hello</s>", "<s></s>", "a<s>b</s>c<unk>d", "<s> <s>  </s>", "<<s>></s>>", "</s",
        "<s", "x</s>", "<unk>", "<0x41>",
    ]
    res = encode(vocab_gguf, cases, "--special")
    for text, r in zip(cases, res):
        ref = []
        for frag, special in split_special(text):
            ref += sp.encode(frag)
            if special:
                ref.append(sp.piece_to_id(special))
        assert r["ids"] == ref, text
    # without the flag, the same text is plain text
    for text, r in zip(cases, encode(vocab_gguf, cases)):
        assert r["ids"] == sp.encode(text), text


def test_invalid_utf8(vocab_gguf):
    bad = [b"\xff", b"abc\x80", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80",
           b"ok \xf0\x9f\x98", b"\xf8\x88\x80\x80\x80"]
    for b, r in zip(bad, encode(vocab_gguf, bad)):
        assert r.get("err") == ERR_INVALID_TEXT, (b, r)
        assert "UTF-8" in r["msg"]


def test_decode_random_sequences(sp, vocab_gguf):
    """Random id sequences, heavy on byte tokens (split, invalid and truncated UTF-8), control and unknown tokens:
    the whole decode and the streamed decode both equal sentencepiece's decode."""
    rng = random.Random(1234)
    n = sp.get_piece_size()
    byte_ids = [i for i in range(n) if sp.IsByte(i)]
    utf8_ids = [[sp.piece_to_id("<0x%02X>" % b) for b in ch.encode()] for ch in "é€😀中ж"]
    seqs = []
    for k in range(600):
        seq = []
        for _ in range(rng.randint(0, 24)):
            r = rng.random()
            if r < 0.35:
                seq.append(rng.choice(byte_ids))
            elif r < 0.5:
                seq += rng.choice(utf8_ids)[: rng.randint(1, 4)]
            elif r < 0.6:
                seq.append(rng.choice([0, 1, 2]))
            elif r < 0.7:
                seq.append(sp.piece_to_id("▁"))
            else:
                seq.append(rng.randrange(n))
        seqs.append(seq)
    seqs += [[], [1], [2], [0], [1, 0], [sp.piece_to_id("▁")], [sp.piece_to_id("▁")] * 2, [1, 1, 22557],
             [3 + 0x20, 22557], [3 + 0xE4, 3 + 0xB8, 3 + 0x80, 22557], [3 + 0xE4, 3 + 0xB8], [3 + 0xE4, 3 + 0xB8, 3 + 0x41]]
    res = run_tool(vocab_gguf, "decode", [" ".join(map(str, s)) for s in seqs])
    a_id = sp.piece_to_id("a")
    res_keep = run_tool(vocab_gguf, "decode", [" ".join(map(str, s)) for s in seqs], "--keep-space")
    for seq, r, rk in zip(seqs, res, res_keep):
        ref = sp.decode(seq)
        assert bytes.fromhex(r["dec"]).decode() == ref, seq
        assert bytes.fromhex(r["stream"]).decode() == ref, seq
        # with KEEP_LEADING_SPACE the text is what follows a preceding plain piece ("a")
        ref_keep = sp.decode([a_id] + seq)[1:]
        assert bytes.fromhex(rk["dec"]).decode() == ref_keep, seq
        assert bytes.fromhex(rk["stream"]).decode() == ref_keep, seq


# ---- chat ----------------------------------------------------------------------------------------------------------

CONVERSATIONS = [
    [("user", "Hello!")],
    [("user", "What is the capital of France?")],
    [("system", "You are a helpful assistant."), ("user", "Hi")],
    [("user", "Explain recursion."), ("assistant", "Recursion is when a function calls itself."),
     ("user", "Give an example in Python.")],
    [("system", "Answer in French."), ("user", "How are you?"), ("assistant", "Je vais bien, merci."),
     ("user", "And the weather?")],
    [("user", "Bonjour, comment ça va ? Ça fait longtemps !")],
    [("user", "日本語で答えてください。"), ("assistant", "はい、わかりました。"), ("user", "ありがとう！")],
    [("user", "Привет! Как дела?"), ("assistant", "Хорошо, спасибо."), ("user", "Γειά σου 😀")],
    [("system", "Be terse."), ("system", "Use metric units."), ("user", "How far is the moon?")],
    [("user", "  leading and trailing spaces  ")],
    [("user", "line one\nline two\n\nline four")],
    [("user", "Write C code"), ("assistant", "int main(void) {\n\treturn 0;\n}"), ("user", "Now in Rust")],
    [("user", "[INST] nested markers [/INST]"), ("assistant", "<s> literal </s>"), ("user", "ok")],
    [("user", "")],
    [("system", "sys"), ("user", "")],
    [("system", "Only a system prompt")],
    [("system", ""), ("user", "empty system prompt is ignored")],
    [("user", "first"), ("assistant", "reply one"), ("user", "second"), ("assistant", "reply two"),
     ("user", "third"), ("assistant", "reply three"), ("user", "fourth")],
    [("user", "a"), ("system", "late system prompt goes to the first user message"), ("assistant", "b"),
     ("user", "c")],
    [("user", "مرحبا"), ("assistant", "أهلا وسهلا"), ("user", "كيف حالك؟")],
    [("user", "Emoji party 🎉🚀🔥"), ("assistant", "🥳"), ("user", "👨‍👩‍👧‍👦 family")],
    [("user", "Numbers: 3.14159 2.71828 1e-9 0xFF"), ("assistant", "Noted: π, e, a nano, 255."), ("user", "Sum?")],
    [("user", "Tabs\tand   runs     of spaces")],
    [("user", "Complete this: The quick brown"), ("assistant", "fox")],  # assistant last: a prefix (no EOS)
    [("system", "s1"), ("user", "u1"), ("assistant", "a1"), ("user", "u2"), ("assistant", "Sure, here")],
]

BAD_CONVERSATIONS = [
    [],
    [("assistant", "I speak first")],
    [("user", "a"), ("user", "b")],
    [("user", "a"), ("assistant", "b"), ("assistant", "c"), ("user", "d")],
    [("user", "a"), ("assistant", "")],
    [("user", "a"), ("tool", "b")],
    [("User", "capitalized role")],
]


def mistral_common_ids(conv):
    from mistral_common.protocol.instruct.messages import AssistantMessage, SystemMessage, UserMessage
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    tok = MistralTokenizer.from_file(model_path())
    msgs = []
    for i, (role, content) in enumerate(conv):
        if role == "system":
            msgs.append(SystemMessage(content=content))
        elif role == "user":
            msgs.append(UserMessage(content=content))
        else:
            msgs.append(AssistantMessage(content=content, prefix=(i == len(conv) - 1)))
    return tok.encode_chat_completion(ChatCompletionRequest(messages=msgs)).tokens


def conv_json(conv):
    return json.dumps([{"role": r, "content": c} for r, c in conv])


def test_chat_matches_mistral_common(vocab_gguf):
    pytest.importorskip("mistral_common")
    assert len(CONVERSATIONS) >= 20
    res = run_tool(vocab_gguf, "chat", [conv_json(c) for c in CONVERSATIONS])
    bad = []
    for conv, r in zip(CONVERSATIONS, res):
        ref = mistral_common_ids(conv)
        if r.get("ids") != ref:
            bad.append(f"{conv}:\n  smoe           {r}\n  mistral-common {ref}")
    assert not bad, "\n".join(bad)


def test_chat_rejects_bad_conversations(vocab_gguf):
    res = run_tool(vocab_gguf, "chat", [conv_json(c) for c in BAD_CONVERSATIONS])
    for conv, r in zip(BAD_CONVERSATIONS, res):
        assert r.get("err") == ERR_INVALID_ARGUMENT, (conv, r)
        assert r["msg"].startswith("chat:"), r


def test_chat_format_matches_jinja(vocab_gguf):
    jinja2 = pytest.importorskip("jinja2")

    def raise_exception(msg):
        raise ValueError(msg)

    env = jinja2.Environment()
    env.globals["raise_exception"] = raise_exception
    tmpl = env.from_string(MIXTRAL_TEMPLATE)
    convs = [c for c in CONVERSATIONS] + BAD_CONVERSATIONS + [[("user", "a"), ("system", "b")]]
    res = run_tool(vocab_gguf, "format", [conv_json(c) for c in convs])
    for conv, r in zip(convs, res):
        try:
            ref = tmpl.render(messages=[{"role": ro, "content": co} for ro, co in conv], bos_token="<s>",
                              eos_token="</s>")
        except ValueError:
            ref = None
        if ref is None:
            assert r.get("err") == ERR_INVALID_ARGUMENT, (conv, r)
        else:
            assert "text" in r, (conv, r)
            assert bytes.fromhex(r["text"]).decode() == ref, conv


# ---- other normalizer settings and piece types, via modified .model files ------------------------------------------


def pb_varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def pb_read_varint(buf, i):
    v = shift = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def pb_fields(buf):
    """Top-level fields of a protobuf message: [(field, wire_type, raw_value_bytes_or_int)]."""
    out, i = [], 0
    while i < len(buf):
        key, i = pb_read_varint(buf, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = pb_read_varint(buf, i)
        elif wt == 2:
            n, i = pb_read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        else:
            raise ValueError(wt)
        out.append((f, wt, v))
    return out


def pb_write(fields):
    out = bytearray()
    for f, wt, v in fields:
        out += pb_varint(f << 3 | wt)
        if wt == 0:
            out += pb_varint(v)
        elif wt == 2:
            out += pb_varint(len(v)) + v
        else:
            out += v
    return bytes(out)


def modified_model(path, *, types=None, normalizer=None, trainer_extra=()):
    """A copy of the model with some piece types changed, normalizer flags set, trainer_spec fields appended."""
    with open(model_path(), "rb") as f:
        fields = pb_fields(f.read())
    out, idx = [], 0
    for f, wt, v in fields:
        if f == 1:
            if types and idx in types:
                sub = [(sf, swt, sv) for sf, swt, sv in pb_fields(v) if sf != 3] + [(3, 0, types[idx])]
                v = pb_write(sub)
            idx += 1
        elif f == 2 and trainer_extra:
            v = bytes(v) + pb_write(list(trainer_extra))
        elif f == 3 and normalizer:
            sub = [(sf, swt, sv) for sf, swt, sv in pb_fields(v) if sf not in normalizer]
            v = pb_write(sub + [(k, 0, int(b)) for k, b in normalizer.items()])
        out.append((f, wt, v))
    with open(path, "wb") as f:
        f.write(pb_write(out))
    return path


def variant_models(sp, tmp):
    pid = sp.piece_to_id
    byte_ids = [i for i in range(sp.get_piece_size()) if sp.IsByte(i)]
    unused = {pid(p): T_UNUSED for p in ["▁t", "in", "er", "▁a", "he", "on", "▁the", "ing", "▁w", "ou"]}
    user = {pid(p): T_USER for p in ["▁the", "ing", "[", "▁▁", "ation", "🙂"] if pid(p) != sp.unk_id()}
    return {
        "no-dummy-prefix": modified_model(str(tmp / "a.model"), normalizer={3: False}),
        "remove-extra-ws": modified_model(str(tmp / "b.model"), normalizer={4: True}),
        "both": modified_model(str(tmp / "c.model"), normalizer={3: False, 4: True}),
        "unused": modified_model(str(tmp / "d.model"), types=unused),
        "user-defined": modified_model(str(tmp / "e.model"), types=user),
        # without byte fallback, the byte pieces must not be BYTE pieces any more
        "no-byte-fallback": modified_model(str(tmp / "f.model"), types={i: T_NORMAL for i in byte_ids},
                                           trainer_extra=[(35, 0, 0)]),
    }


def test_variants_spm_reader(sp, corpus, tmp_path):
    """The algorithm beyond Mixtral's settings: normalizer flags, UNUSED and USER_DEFINED pieces, no byte fallback,
    each against sentencepiece loading the same modified model."""
    rng = random.Random(7)
    cases = rng.sample(corpus, 600) + [c for c in corpus if len(c) < 3 or c.strip() != c][:200]
    for name, path in variant_models(sp, tmp_path).items():
        ref_sp = sentencepiece.SentencePieceProcessor(model_file=path)
        res = encode(path, cases)
        bad = []
        for text, r in zip(cases, res):
            ref = ref_sp.encode(text)
            if r.get("ids") != ref:
                bad.append(f"{show(text)}: smoe {r.get('ids', r)[:12]} sentencepiece {ref[:12]}")
            elif bytes.fromhex(r["dec"]).decode() != ref_sp.decode(ref):
                bad.append(f"{show(text)}: decode {show(bytes.fromhex(r['dec']).decode())} != "
                           f"{show(ref_sp.decode(ref))}")
            elif r["stream"] != r["dec"]:
                bad.append(f"{show(text)}: streamed decode differs")
        assert not bad, f"variant {name}: {len(bad)} of {len(cases)} differ:\n" + "\n".join(bad[:20])


def test_spm_reader_rejects(sp, tmp_path):
    """What smoe does not implement is refused clearly, not mis-tokenized."""
    cases = {
        "unigram": dict(trainer_extra=[(3, 0, 1)]),
        "ws-suffix": dict(trainer_extra=[(24, 0, 1)]),
        "no-escape": dict(normalizer={5: False}),
        "byte-without-fallback": dict(trainer_extra=[(35, 0, 0)]),
    }
    for name, kw in cases.items():
        path = modified_model(str(tmp_path / f"{name}.model"), **kw)
        r = subprocess.run([TOOL, "-s", path, "vocab"], capture_output=True)
        assert r.returncode == 1, name
        err = r.stderr.decode()
        assert ("unsupported" in err) if name != "byte-without-fallback" else ("corrupt file" in err), (name, err)
    # truncated files are corrupt, never a crash
    with open(model_path(), "rb") as f:
        data = f.read()
    for cut in (1, 7, 100, len(data) // 2, len(data) - 1):
        path = tmp_path / "cut.model"
        path.write_bytes(data[:cut])
        r = subprocess.run([TOOL, "-s", str(path), "vocab"], capture_output=True)
        assert r.returncode == 1 and "corrupt file" in r.stderr.decode(), cut


# ---- GGUF files written by llama.cpp's converter (development data; skipped when absent) --------------------------

LLAMACPP_REF = os.environ.get("SMOE_LLAMACPP_REF", os.path.join(ROOT, "..", "shared", "data", "llamacpp-ref"))


def llamacpp_ggufs():
    paths = sorted(glob.glob(os.path.join(LLAMACPP_REF, "gguf", "*.gguf")))
    if not paths:
        pytest.skip(f"no llama.cpp reference GGUFs in {LLAMACPP_REF} (development data, not in the repository)")
    return paths


def test_llamacpp_gguf_prompts():
    """llama.cpp writes <unk> as CONTROL and no unknown_token_id; its prompt ids (BOS, plain text) are ours."""
    n = 0
    for path in llamacpp_ggufs():
        model = os.path.basename(path)[: -len(".gguf")]
        for ref_path in sorted(glob.glob(os.path.join(LLAMACPP_REF, "refs", model, "*.json"))):
            prompt = os.path.join(LLAMACPP_REF, "prompts", os.path.basename(ref_path)[: -len(".json")] + ".txt")
            with open(ref_path) as f:
                ref = json.load(f)["prompt_tokens"]
            with open(prompt, "rb") as f:
                (r,) = encode(path, [f.read()], "--bos")
            assert r["ids"] == ref, (model, prompt)
            n += 1
    assert n > 0


def test_llamacpp_gguf_corpus(sp, corpus):
    path = llamacpp_ggufs()[0]
    check_corpus(sp, path, corpus)
    # the template smoe_chat_format renders is the one these files carry
    r = gguf.GGUFReader(path)
    f = r.fields["tokenizer.chat_template"]
    assert bytes(f.parts[f.data[0]]).decode() == MIXTRAL_TEMPLATE


# ---- speed ---------------------------------------------------------------------------------------------------------


def test_tokenize_1mb_fast(vocab_gguf, corpus, tmp_path):
    """A 1 MB input (corpus prose and code, with newlines) tokenizes in well under a second."""
    text = "\n".join(corpus)
    blob = (text * (1 + (1 << 20) // len(text.encode())))
    data = blob.encode()[: 1 << 20]
    data = data[: len(data.decode("utf-8", errors="ignore").encode())]
    path = tmp_path / "1mb.txt"
    path.write_bytes(data)
    r = subprocess.run([TOOL, "-g", vocab_gguf, "bench", str(path)], capture_output=True, check=True)
    res = json.loads(r.stdout)
    print(f"\ntokenize 1 MB: {res['bytes']} bytes -> {res['ids']} ids in {res['seconds'] * 1e3:.1f} ms")
    limit = 0.5 * (8 if os.environ.get("SMOE_SANITIZED") else 1)
    assert res["seconds"] < limit
