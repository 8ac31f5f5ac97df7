#!/usr/bin/env python3
"""Writes the seed corpora of fuzz-tokenizer (mode byte + text) and fuzz-spm-model (small SentencePiece models,
protobuf written here by hand from sentencepiece_model.proto's field numbers). Deterministic; output committed.
Run: python3 tests/fuzz/gen_corpus_tokenizer.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(d, name, data):
    os.makedirs(os.path.join(HERE, "corpus", d), exist_ok=True)
    with open(os.path.join(HERE, "corpus", d, name), "wb") as f:
        f.write(data)


# fuzz-tokenizer: byte 0 = mode (bit0 tokenizer B, bit1 BOS, bit2 parse special, bit3 bytes -> UTF-8)
TEXTS = {
    "plain": (0, "Hello world, the thing in the rain.".encode()),
    "spaces": (1, "   the  thing   in\tthe  \n rain   ".encode()),
    "special": (6, "<s>[INST] hi [/INST] there</s><unk>".encode()),
    "unicode": (0, "日本 é 😀 Привет ١٢٣ ▁x".encode()),
    "invalid": (0, b"ab\xff\xc3\x28\xe2\x82\xf0\x9f\x98"),
    "utf8-mode": (8, bytes(range(0, 256, 3))),
    "utf8-mode-b": (9, bytes((i * 37) & 0xFF for i in range(120))),
    "nul": (2, b"a\x00b\x00\x00c"),
    "long-word": (0, b"th" * 300),
}
for name, (mode, text) in TEXTS.items():
    write("tokenizer", name, bytes([mode]) + text)


def varint(v):
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def field(num, wt, payload):
    key = varint(num << 3 | wt)
    if wt == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def piece(s, score, typ):
    return field(1, 2, field(1, 2, s.encode()) + field(2, 5, struct.pack("<f", score)) + field(3, 0, varint(typ)))


def model(byte_fallback=True, extra=(), normalizer=b"", trainer_extra=b""):
    out = piece("<unk>", 0, 2) + piece("<s>", 0, 3) + piece("</s>", 0, 3)
    if byte_fallback:
        out += b"".join(piece("<0x%02X>" % b, 0, 6) for b in range(256))
    for i, p in enumerate(["\u2581", "a", "b", "t", "h", "e", "th", "\u2581t", "the", "\u2581the"] + list(extra)):
        out += piece(p, -float(i), 1)
    trainer = field(3, 0, varint(2)) + field(35, 0, varint(int(byte_fallback))) + trainer_extra
    out += field(2, 2, trainer)
    out += field(3, 2, field(1, 2, b"identity") + normalizer)
    return out


write("spm-model", "bpe-bytes", model())
write("spm-model", "bpe-nobytes", model(byte_fallback=False, normalizer=field(3, 0, b"\x00") + field(4, 0, b"\x01")))
write("spm-model", "bpe-user", model(extra=["x"]) + piece("<sep>", 0, 4) + piece("zz", -3, 5))
write("spm-model", "unigram", model(trainer_extra=field(3, 0, varint(1))))
