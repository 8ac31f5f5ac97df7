/*
 * fuzz-spm-model.c - libFuzzer target for the SentencePiece .model reader (convert/spm-model.c): any bytes are parsed;
 * a failure must set a message, and an accepted model must give a consistent vocabulary that builds a tokenizer,
 * which then tokenizes and decodes a fixed text.
 */
#include "convert/spm-model.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    smoe_spm_vocab *v = NULL;
    if (smoe_spm_parse(data, size, &v) != SMOE_OK) {
        if (v || !smoe_last_error()[0]) __builtin_trap();
        return 0;
    }
    if (v->n_vocab <= 0 || v->unk_id < 0 || v->unk_id >= v->n_vocab || v->bos_id >= v->n_vocab ||
        v->eos_id >= v->n_vocab)
        __builtin_trap();
    for (int32_t i = 0; i < v->n_vocab; i++)
        if (strlen(v->pieces[i]) > v->piece_lens[i] || v->types[i] < 1 || v->types[i] > 6) __builtin_trap();
    smoe_tokenizer *t = NULL;
    if (smoe_spm_to_tokenizer(v, &t) != SMOE_OK) __builtin_trap();
    static const char text[] = "Hello  w\xC3\xB6rld <s> \xF0\x9F\x98\x80\t\n";
    int32_t           ids[256];
    size_t            n = 0;
    smoe_status       st = smoe_tokenize(t, text, sizeof(text) - 1, ids, 256, &n, SMOE_TOKENIZE_PARSE_SPECIAL);
    if (st != SMOE_OK && st != SMOE_ERR_BUFFER_TOO_SMALL) __builtin_trap();
    if (st == SMOE_OK) {
        char   buf[1024];
        size_t len;
        st = smoe_detokenize(t, ids, n, buf, sizeof(buf), &len, 0);
        if (st != SMOE_OK && st != SMOE_ERR_BUFFER_TOO_SMALL) __builtin_trap();
    }
    smoe_tokenizer_free(t);
    smoe_spm_free(v);
    return 0;
}
