#!/usr/bin/env python3
"""Generates the tokenizer test corpus (deterministic; the output is committed):

  tests/data/tokenizer-corpus.txt      one case per line, UTF-8 (tabs kept literally, an empty line is a case)
  tests/data/tokenizer-corpus-ctrl.jsonl  one JSON string per line: cases with CR, LF, NUL and other control
                                          characters that a line-based file cannot hold

All prose is written here (sentence parts combined by a seeded RNG), no third-party text.
Run:  python3 tests/data/gen_tokenizer_corpus.py
"""
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(20240611)

# ---- prose: sentence parts per language, combined at random -------------------------------------------------------

PROSE = {
    "en": dict(
        subj=["The old lighthouse keeper", "My neighbour's cat", "A committee of engineers", "Every morning the baker",
              "The quiet student", "Our small team", "The river", "A tired traveller", "The new compiler",
              "Grandmother", "The orchestra", "This algorithm", "The mayor of the village", "Nobody", "She", "They"],
        verb=["repaired", "painted", "measured", "forgot", "carried", "explained", "rewrote", "discovered", "ignored",
              "celebrated", "described", "borrowed", "tested", "delivered", "questioned", "counted"],
        obj=["the broken clock", "a thousand paper boats", "the last chapter of the report", "three green umbrellas",
             "every single pixel", "the recipe for plum cake", "an unexpected bug in the parser", "the winter garden",
             "forty-two wooden chairs", "the map of the northern coast", "a very long list of numbers",
             "the meaning of the word 'serendipity'"],
        tail=["before sunrise.", "without saying a word.", "because it was Tuesday!", "while the kettle boiled.",
              "in less than 3.5 seconds.", "-- or so they claim.", "(again).", "for the 17th time this year.",
              "and nobody noticed?", "with remarkable patience; nobody complained.", "at 08:45 sharp.",
              "under the light of a full moon..."],
    ),
    "fr": dict(
        subj=["Le vieux gardien du phare", "La chatte de ma voisine", "Un comité d'ingénieurs", "Chaque matin, le boulanger",
              "L'étudiante silencieuse", "Notre petite équipe", "La rivière", "Un voyageur épuisé", "Le nouveau compilateur",
              "Ma grand-mère", "L'orchestre", "Cet algorithme", "Le maire du village", "Personne", "Elle", "Ils"],
        verb=["a réparé", "a peint", "a mesuré", "a oublié", "a porté", "a expliqué", "a réécrit", "a découvert",
              "a ignoré", "a célébré", "a décrit", "a emprunté", "a testé", "a livré", "a remis en question"],
        obj=["l'horloge cassée", "mille bateaux en papier", "le dernier chapitre du rapport", "trois parapluies verts",
             "chaque pixel", "la recette du gâteau aux prunes", "un bogue inattendu dans l'analyseur",
             "le jardin d'hiver", "quarante-deux chaises en bois", "la carte de la côte nord", "une très longue liste"],
        tail=["avant l'aube.", "sans dire un mot.", "parce que c'était mardi !", "pendant que la bouilloire chauffait.",
              "en moins de 3,5 secondes.", "— du moins, c'est ce qu'on dit.", "(encore une fois).",
              "pour la 17e fois cette année.", "et personne n'a rien remarqué ?", "à 8 h 45 précises.",
              "« C'est incroyable », a-t-il ajouté.", "où ça ? Là-bas, près de l'église."],
    ),
    "it": dict(
        subj=["Il vecchio guardiano del faro", "La gatta della mia vicina", "Un comitato di ingegneri",
              "Ogni mattina il fornaio", "La studentessa silenziosa", "La nostra piccola squadra", "Il fiume",
              "Un viaggiatore stanco", "Il nuovo compilatore", "La nonna", "L'orchestra", "Questo algoritmo",
              "Il sindaco del paese", "Nessuno", "Lei", "Loro"],
        verb=["ha riparato", "ha dipinto", "ha misurato", "ha dimenticato", "ha portato", "ha spiegato", "ha riscritto",
              "ha scoperto", "ha ignorato", "ha festeggiato", "ha descritto", "ha preso in prestito", "ha collaudato"],
        obj=["l'orologio rotto", "mille barchette di carta", "l'ultimo capitolo della relazione", "tre ombrelli verdi",
             "ogni singolo pixel", "la ricetta della torta di prugne", "un errore inatteso nel parser",
             "il giardino d'inverno", "quarantadue sedie di legno", "la mappa della costa settentrionale"],
        tail=["prima dell'alba.", "senza dire una parola.", "perché era martedì!", "mentre l'acqua bolliva.",
              "in meno di 3,5 secondi.", "— o almeno così dicono.", "(di nuovo).", "per la 17ª volta quest'anno.",
              "e nessuno se n'è accorto?", "alle 8:45 in punto.", "più o meno così: è già città."],
    ),
    "de": dict(
        subj=["Der alte Leuchtturmwärter", "Die Katze meiner Nachbarin", "Ein Ausschuss von Ingenieuren",
              "Jeden Morgen hat der Bäcker", "Die stille Studentin", "Unser kleines Team", "Der Fluss",
              "Ein müder Reisender", "Der neue Übersetzer", "Großmutter", "Das Orchester", "Dieser Algorithmus",
              "Der Bürgermeister des Dorfes", "Niemand", "Sie"],
        verb=["reparierte", "malte", "vermaß", "vergaß", "trug", "erklärte", "schrieb um", "entdeckte", "ignorierte",
              "feierte", "beschrieb", "lieh sich", "prüfte", "lieferte", "zählte"],
        obj=["die kaputte Uhr", "tausend Papierschiffchen", "das letzte Kapitel des Berichts", "drei grüne Regenschirme",
             "jedes einzelne Pixel", "das Rezept für Pflaumenkuchen", "einen unerwarteten Fehler im Parser",
             "den Wintergarten", "zweiundvierzig Holzstühle", "die Donaudampfschifffahrtsgesellschaftskapitänsmütze",
             "die Straße an der Nordküste"],
        tail=["vor Sonnenaufgang.", "ohne ein Wort zu sagen.", "weil Dienstag war!", "während das Wasser kochte.",
              "in weniger als 3,5 Sekunden.", "– so heißt es jedenfalls.", "(schon wieder).",
              "zum 17. Mal in diesem Jahr.", "und niemand hat es bemerkt?", "um Punkt 8:45 Uhr.",
              "„Unglaublich“, sagte er; äußerst gemäß."],
    ),
    "es": dict(
        subj=["El viejo farero", "La gata de mi vecina", "Un comité de ingenieros", "Cada mañana el panadero",
              "La estudiante callada", "Nuestro pequeño equipo", "El río", "Un viajero cansado", "El nuevo compilador",
              "La abuela", "La orquesta", "Este algoritmo", "El alcalde del pueblo", "Nadie", "Ella", "Ellos"],
        verb=["reparó", "pintó", "midió", "olvidó", "llevó", "explicó", "reescribió", "descubrió", "ignoró",
              "celebró", "describió", "pidió prestado", "probó", "entregó", "contó"],
        obj=["el reloj roto", "mil barquitos de papel", "el último capítulo del informe", "tres paraguas verdes",
             "cada píxel", "la receta del pastel de ciruelas", "un error inesperado en el analizador",
             "el jardín de invierno", "cuarenta y dos sillas de madera", "el mapa de la costa norte"],
        tail=["antes del amanecer.", "sin decir una palabra.", "¡porque era martes!", "mientras hervía el agua.",
              "en menos de 3,5 segundos.", "— o eso dicen.", "(otra vez).", "por 17.ª vez este año.",
              "¿y nadie se dio cuenta?", "a las 8:45 en punto.", "¡Qué año! ¿Verdad, señor Núñez?"],
    ),
}


def prose_lines(lang, n):
    p = PROSE[lang]
    out = []
    for _ in range(n):
        k = rng.randint(1, 3)
        sents = []
        for _ in range(k):
            s = f"{rng.choice(p['subj'])} {rng.choice(p['verb'])} {rng.choice(p['obj'])} {rng.choice(p['tail'])}"
            if rng.random() < 0.1:
                s = s.upper()
            elif rng.random() < 0.1:
                s = s.lower()
            sents.append(s)
        out.append(" ".join(sents))
    return out


# ---- source code ---------------------------------------------------------------------------------------------------

CODE = r'''
#include <stdio.h>
int main(int argc, char **argv) {
    for (int i = 0; i < argc; i++) printf("%d: %s\n", i, argv[i]);
	return 0; /* tab-indented */
}
static inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }
#define MAX(a, b) ((a) > (b) ? (a) : (b))
    if (ptr == NULL && len != 0) { errno = EINVAL; return -1; }
def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
print(f"{x!r:>10} -> {y:.3f}")  # formatted
lambda x: [i ** 2 for i in range(x) if i % 3 == 0]
class Node:  def __init__(self, value, children=None): self.value, self.children = value, children or []
const sum = (xs) => xs.reduce((acc, x) => acc + x, 0);
document.querySelector('#app').addEventListener('click', (e) => { e.preventDefault(); });
export default async function fetchJson(url) { const r = await fetch(url); return r.json(); }
let re = /^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$/i;
fn main() { let v: Vec<u64> = (1..=10).map(|x| x * x).collect(); println!("{:?}", v); }
impl<T: Clone + Send> Worker<T> { pub fn spawn(&self) -> Result<(), Box<dyn Error>> { Ok(()) } }
match value { Some(ref x) if *x > 0 => x.to_string(), _ => String::from("none") }
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "ok\n") }
if err != nil { return nil, fmt.Errorf("open %q: %w", path, err) }
SELECT u.id, COUNT(*) AS n FROM users u JOIN orders o ON o.user_id = u.id WHERE o.total > 100 GROUP BY u.id HAVING n > 3;
INSERT INTO t (a, b) VALUES (1, 'it''s'), (2, NULL);
for f in *.txt; do wc -l "$f" | awk '{print $1}'; done 2>/dev/null
export PATH="$HOME/.local/bin:$PATH" && echo "${PATH%%:*}"
<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Test &amp; more</title></head></html>
<div class="card" data-id="42"><p>Hello, <b>world</b>!</p></div>
{"name": "smoe", "version": [0, 1, 0], "nested": {"ok": true, "pi": 3.14159, "none": null}}
\begin{equation} E = mc^2 \quad \int_0^\infty e^{-x^2}\,dx = \frac{\sqrt{\pi}}{2} \end{equation}
public static void main(String[] args) { System.out.println(String.join(",", args)); }
template <typename T> constexpr T clamp(T v, T lo, T hi) { return v < lo ? lo : hi < v ? hi : v; }
std::vector<std::unique_ptr<Base>> items; items.emplace_back(std::make_unique<Derived>(1, 2.0f));
local t = setmetatable({}, { __index = function(_, k) return k * 2 end })
defmodule Math do def sum(a, b), do: a + b end
(defun square (x) (* x x))
    x := <-ch; select { case v := <-done: _ = v; default: }
%macro push_all 0 ; nasm
    mov rax, [rbp-8]
    vfmadd231ps ymm0, ymm1, ymm2
'''.strip("\n").split("\n")

# ---- scripts ------------------------------------------------------------------------------------------------------

SCRIPTS = [
    # Chinese, Japanese, Korean
    "今天天气很好，我们去公园散步吧。", "这个程序的速度比以前快了三倍。", "我喜欢在晚上读书和写代码。",
    "東京の天気は晴れです。明日は雨が降るでしょう。", "私はコーヒーよりお茶が好きです。",
    "カタカナとひらがなと漢字が混ざった文章。", "オープンソースのソフトウェアを翻訳しています。",
    "안녕하세요, 만나서 반갑습니다.", "오늘은 새로운 알고리즘을 시험해 보았습니다.", "한국어 문장과 English words 섞기",
    # Cyrillic
    "Привет, мир! Как у тебя дела?", "Быстрая коричневая лиса перепрыгнула через ленивую собаку.",
    "Съешь же ещё этих мягких французских булок да выпей чаю.", "Україна, Беларусь, Србија, България.",
    # Greek
    "Γειά σου, κόσμε! Τι κάνεις σήμερα;", "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
    "Ωραίος καιρός σήμερα στην Αθήνα.", "αβγδεζηθικλμνξοπρστυφχψω ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ",
    # Arabic, Hebrew
    "مرحبا بالعالم! كيف حالك اليوم؟", "هذا نص عربي قصير للاختبار.", "اللغة العربية جميلة ١٢٣٤٥٦٧٨٩٠",
    "שלום עולם! מה שלומך?", "זהו טקסט בעברית לבדיקה.",
    # Others
    "नमस्ते दुनिया! आप कैसे हैं?", "สวัสดีชาวโลก วันนี้อากาศดี", "Xin chào thế giới! Tiếng Việt có dấu.",
    "Zażółć gęślą jaźń.", "Příliš žluťoučký kůň úpěl ďábelské ódy.", "Árvíztűrő tükörfúrógép.",
    "Ærøskøbing ligger på Ærø; blåbærsyltetøy.", "Ğüşiöç İstanbul'da ıslak.", "Þórður og Ðóra.",
    "ქართული ენა", "Հայերեն լեզու", "ᚠᚢᚦᚨᚱᚲ runes", "ꦗꦮ Javanese", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙 𝒔𝒄𝒓𝒊𝒑𝒕",
]

EMOJI = ["😀", "😂", "🥲", "👍", "👍🏽", "❤️", "🔥", "🚀", "🎉", "🤖", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "🇮🇹",
         "🇩🇪", "🇪🇸", "🇬🇧", "✅", "❌", "⚠️", "☕", "🍕", "🐍", "🦀", "🌍", "💡", "📈", "🧪", "🫠"]

SPECIAL = [
    "<s>", "</s>", "<unk>", "<s></s>", "<s> hello </s>", "[INST]", "[/INST]", "[INST] hi [/INST]",
    "<s>[INST] What is 2+2? [/INST] 4</s>", "text with <s> inside", "a</s>b", "<<s>>", "</s></s></s>",
    "<0x41>", "<0xFF> <0x00>", "<pad>", "▁", "▁▁▁", "a▁b", "▁leading", "trailing▁", "[INST][/INST]",
    "[INST]  [/INST]", "<s >", "< s>", "<S>", "<|im_start|>user", "<|endoftext|>",
]


def whitespace_lines(n):
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()
    out = []
    for _ in range(n):
        k = rng.randint(1, 6)
        parts = []
        for _ in range(k):
            parts.append(rng.choice([" ", "  ", "   ", "    ", "\t", "\t\t", " \t ", "        ", " " * 17]))
            parts.append(rng.choice(words))
        if rng.random() < 0.5:
            parts.append(rng.choice([" ", "   ", "\t", " \t"]))
        s = "".join(parts)
        if rng.random() < 0.5:
            s = s.lstrip()
        out.append(s)
    out += [" ", "  ", "   ", " " * 8, " " * 31, "\t", "\t\t\t", " \t \t ", "x" + " " * 50 + "y"]
    return out


def digit_lines(n):
    out = []
    for _ in range(n):
        kind = rng.randrange(8)
        if kind == 0:
            out.append(str(rng.randrange(10 ** rng.randint(1, 30))))
        elif kind == 1:
            out.append(f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 8)}f}")
        elif kind == 2:
            out.append(f"{rng.randint(1900, 2100)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
                       f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z")
        elif kind == 3:
            out.append(f"+{rng.randint(1, 99)} ({rng.randint(100, 999)}) {rng.randint(100, 999)}-{rng.randint(1000, 9999)}")
        elif kind == 4:
            out.append("0x%x 0b%s 0o%o" % (rng.getrandbits(48), bin(rng.getrandbits(12))[2:], rng.getrandbits(20)))
        elif kind == 5:
            out.append(f"{rng.uniform(0, 1):.3e} {rng.randint(-999, 999)}% ±{rng.randint(0, 9)}.{rng.randint(0, 99)}")
        elif kind == 6:
            out.append(",".join(str(rng.randint(0, 255)) for _ in range(rng.randint(2, 12))))
        else:
            out.append(f"v{rng.randint(0, 9)}.{rng.randint(0, 99)}.{rng.randint(0, 999)} build #{rng.randint(1, 99999)}")
    return out


def punct_lines(n):
    p = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»“”‘’„‚…–—·•§¶©®™°±×÷€£¥¢←→↑↓⇒∀∃∈∑∏√∞≈≠≤≥"
    out = []
    for _ in range(n):
        out.append("".join(rng.choice(p) for _ in range(rng.randint(1, 40))))
    out += ["https://example.org/path/to/page?query=1&x=%20y#frag", "mailto:someone@example.com",
            "C:\\Program Files\\App\\app.exe", "/usr/local/lib/libsmoe.so.0", "==> ---> <--- <==", "...", "?!?!",
            "(((nested (parens))))", "¯\\_(ツ)_/¯", "┌──┬──┐ │ab│cd│ └──┴──┘", "=" * 40, "-" * 77]
    return out


def emoji_lines(n):
    out = []
    for _ in range(n):
        k = rng.randint(1, 8)
        parts = [rng.choice(EMOJI) for _ in range(k)]
        if rng.random() < 0.5:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(["so happy", "launch day", "C'est génial", "ok"]))
        out.append(rng.choice(["", " "]).join(parts))
    return out


def random_unicode_lines(n):
    """Random code points from many blocks: exercises byte fallback for characters outside the vocabulary."""
    blocks = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF), (0x900, 0x97F),
              (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x2BFF), (0x3040, 0x30FF), (0x4E00, 0x9FFF),
              (0xAC00, 0xD7A3), (0xE000, 0xF8FF), (0xFB00, 0xFFFD), (0x10000, 0x1FFFF), (0x20000, 0x2FFFF),
              (0xE0000, 0xE007F), (0xF0000, 0x10FFFF)]
    out = []
    for _ in range(n):
        s = []
        for _ in range(rng.randint(1, 24)):
            lo, hi = rng.choice(blocks)
            c = rng.randint(lo, hi)
            if 0xD800 <= c <= 0xDFFF or c in (0x2028, 0x2029):
                continue
            s.append(chr(c))
        out.append("".join(s))
    return out


def mixed_lines(n):
    """Prose fragments of all languages, scripts, code and emoji glued together."""
    pool = prose_lines("en", 30) + prose_lines("fr", 30) + SCRIPTS + CODE + EMOJI + SPECIAL
    out = []
    for _ in range(n):
        k = rng.randint(2, 4)
        out.append(rng.choice([" ", "", "  ", "\t", " | "]).join(rng.choice(pool) for _ in range(k)))
    return out


def long_words():
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = ["a" * 5000, "ab" * 1500, "supercalifragilisticexpialidocious" * 40,
           "".join(rng.choice(letters) for _ in range(3000)), "Donaudampfschifffahrtselektrizitätenhauptbetriebswerk" * 10,
           "x" * 257, "0123456789" * 200, "😀" * 500, "日本語" * 400, "▁" * 300, "é" * 1000, "\u00e9\u0301" * 200,
           "-" * 2000, "https://example.org/" + "/".join("seg%d" % i for i in range(300))]
    out += ["".join(rng.choice(letters) for _ in range(rng.randint(100, 400))) for _ in range(20)]
    return out


def short_lines():
    out = [""]
    out += [chr(c) for c in range(0x21, 0x7F)]
    out += ["é", "ß", "ñ", "ü", "ç", "€", "中", "あ", "한", "я", "ω", "ع", "😀", "\u00a0", "\u200b", "\u3000", "\ufeff",
            "\ufffd", "\U0010ffff", "\u2581", "\u0301", "a ", " a", "ab", "I", "A.", "?!"]
    return out


CTRL = [
    "line one\nline two", "windows\r\nline endings\r\n", "old mac\rline", "\r\n", "\n", "\r", "\n\n\n",
    "trailing newline\n", "\nleading newline", "tab\there\tand\tthere", "nul\x00byte", "\x00", "\x00\x00a",
    "bell\x07 vertical\x0b feed\x0c", "esc \x1b[31mred\x1b[0m", "del\x7f", "\x01\x02\x03\x1f",
    "nel\x85 line sep\u2028 para sep\u2029", "zero width\u200b joiner\u200d non\ufeff",
    "def f():\r\n    return 1\r\n", "a \n b \r\n c", "  \n  ", "\t\n\t", "mixed\r\n\ttabs\r\n  and spaces  \r\n",
    "CSV,line,\"quoted\r\nfield\",end\n", "# heading\n\n- item 1\n- item 2\n\n```\ncode\n```\n",
]


def main():
    lines = []
    for lang in PROSE:
        lines += prose_lines(lang, 250)
    lines += CODE
    lines += SCRIPTS * 2
    lines += whitespace_lines(120)
    lines += digit_lines(150)
    lines += punct_lines(80)
    lines += emoji_lines(80)
    lines += SPECIAL
    lines += random_unicode_lines(200)
    lines += mixed_lines(150)
    lines += long_words()
    lines += short_lines()
    for s in lines:
        assert "\n" not in s and "\r" not in s, repr(s)
        # a line-based file cannot hold these; they go to the ctrl file
        assert not any(c in s for c in "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), repr(s)
    with open(os.path.join(HERE, "tokenizer-corpus.txt"), "w", encoding="utf-8", newline="\n") as f:
        for s in lines:
            f.write(s + "\n")
    with open(os.path.join(HERE, "tokenizer-corpus-ctrl.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for s in CTRL:
            f.write(json.dumps(s) + "\n")
    print(f"{len(lines)} lines, {len(CTRL)} control-character cases")


if __name__ == "__main__":
    main()
