/*
 * generate.c - the high-level loop: decode a prompt, sample, decode each sampled token, stream its text.
 *
 * Every sampled token (EOS included) is decoded into the KV cache, so after a call the cache holds prompt + reply
 * and a chat can append its next turn at smoe_kv_seq_pos_next. The free-cell check happens before any decode, so a
 * request that cannot fit changes nothing.
 *
 * Stop strings: the text completed by each token goes into `pending`; text is delivered only once no stop string can
 * still begin inside it (we hold back the longest suffix that is a prefix of some stop string), so a stop string
 * split across tokens is caught and never delivered.
 */
#include "status.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

smoe_generate_params smoe_generate_default_params(void) {
    return (smoe_generate_params){
        .size = sizeof(smoe_generate_params),
        .max_tokens = 256,
        .seq_id = 0,
        .sampling = smoe_sampler_default_params(),
        .detokenize_flags = SMOE_DETOKENIZE_KEEP_LEADING_SPACE,
    };
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

typedef struct text_state {
    char                       *buf;
    size_t                      len, cap;
    const smoe_generate_params *p;
    bool                        stopped_by_string;
    bool                        stopped_by_callback;
} text_state;

static smoe_status text_append(text_state *ts, const char *s, size_t n) {
    if (ts->len + n + 1 > ts->cap) {
        size_t ncap = ts->cap ? ts->cap : 256;
        while (ncap < ts->len + n + 1) ncap *= 2;
        char *nb = realloc(ts->buf, ncap);
        SMOE_RETURN_IF(!nb, SMOE_ERR_OUT_OF_MEMORY, "generate: out of memory");
        ts->buf = nb;
        ts->cap = ncap;
    }
    memcpy(ts->buf + ts->len, s, n);
    ts->len += n;
    ts->buf[ts->len] = '\0';
    return SMOE_OK;
}

/* Delivers `n` bytes from the front of pending. */
static void text_deliver(text_state *ts, size_t n) {
    if (n == 0) return;
    if (ts->p->on_text && !ts->stopped_by_callback) {
        if (!ts->p->on_text(ts->buf, n, ts->p->user_data)) ts->stopped_by_callback = true;
    }
    memmove(ts->buf, ts->buf + n, ts->len - n);
    ts->len -= n;
    ts->buf[ts->len] = '\0';
}

/* Finds the earliest stop string in pending; returns its offset or SIZE_MAX. */
static size_t find_stop(const text_state *ts) {
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < ts->p->n_stop; i++) {
        const char *s = ts->p->stop[i];
        const size_t sl = strlen(s);
        if (sl == 0 || sl > ts->len) continue;
        for (size_t off = 0; off + sl <= ts->len && off < best; off++) {
            if (memcmp(ts->buf + off, s, sl) == 0) {
                best = off;
                break;
            }
        }
    }
    return best;
}

/* Length of the longest suffix of pending that is a proper prefix of some stop string. */
static size_t held_back(const text_state *ts) {
    size_t hold = 0;
    for (size_t i = 0; i < ts->p->n_stop; i++) {
        const char *s = ts->p->stop[i];
        const size_t sl = strlen(s);
        for (size_t k = (sl - 1 < ts->len ? sl - 1 : ts->len); k > hold; k--) {
            if (memcmp(ts->buf + ts->len - k, s, k) == 0) {
                hold = k;
                break;
            }
        }
    }
    return hold;
}

/* Adds newly completed text; delivers what is safe; sets stopped_by_string when a stop string appears. */
static smoe_status text_push(text_state *ts, const char *s, size_t n, bool final) {
    SMOE_TRY(text_append(ts, s, n));
    const size_t stop_at = find_stop(ts);
    if (stop_at != SIZE_MAX) {
        text_deliver(ts, stop_at);
        ts->len = 0;
        ts->stopped_by_string = true;
        return SMOE_OK;
    }
    text_deliver(ts, final ? ts->len : ts->len - held_back(ts));
    return SMOE_OK;
}

smoe_status smoe_generate(smoe_context *ctx, const int32_t *prompt, size_t n_prompt,
                          const smoe_generate_params *params, smoe_generate_result *result) {
    SMOE_RETURN_IF(!ctx || !params, SMOE_ERR_INVALID_ARGUMENT, "generate: NULL context or params");
    SMOE_RETURN_IF(params->size != sizeof(smoe_generate_params), SMOE_ERR_INVALID_ARGUMENT,
                   "generate params: size %u, expected %zu (use smoe_generate_default_params)", params->size,
                   sizeof(smoe_generate_params));
    SMOE_RETURN_IF(!prompt || n_prompt == 0, SMOE_ERR_INVALID_ARGUMENT, "generate: empty prompt");
    SMOE_RETURN_IF(params->max_tokens < 1, SMOE_ERR_INVALID_ARGUMENT, "generate: max_tokens %d, must be >= 1",
                   (int)params->max_tokens);
    SMOE_RETURN_IF(params->n_stop && !params->stop, SMOE_ERR_INVALID_ARGUMENT, "generate: n_stop without stop");
    for (size_t i = 0; i < params->n_stop; i++)
        SMOE_RETURN_IF(!params->stop[i] || !params->stop[i][0], SMOE_ERR_INVALID_ARGUMENT,
                       "generate: stop string %zu is NULL or empty", i);
    if (result) memset(result, 0, sizeof(*result));

    const smoe_model     *model = smoe_context_model(ctx);
    const smoe_tokenizer *tok = smoe_model_tokenizer(model);
    smoe_model_info       info;
    smoe_model_get_info(model, &info);
    const uint32_t n_free = smoe_context_n_ctx(ctx) - smoe_kv_used(ctx);
    SMOE_RETURN_IF((uint64_t)n_prompt + (uint64_t)params->max_tokens > n_free, SMOE_ERR_CONTEXT_FULL,
                   "generate: %zu prompt tokens + %d to generate exceed the %u free cells of the context "
                   "(n_ctx %u)", n_prompt, (int)params->max_tokens, n_free, smoe_context_n_ctx(ctx));
    SMOE_RETURN_IF(n_prompt > INT32_MAX, SMOE_ERR_INVALID_ARGUMENT, "generate: prompt too long");
    for (size_t i = 0; i < n_prompt; i++)
        SMOE_RETURN_IF(prompt[i] < 0 || prompt[i] >= info.n_vocab, SMOE_ERR_INVALID_ARGUMENT,
                       "generate: prompt token %zu = %d outside the vocabulary [0, %d)", i, (int)prompt[i],
                       (int)info.n_vocab);

    smoe_status       st = SMOE_OK;
    smoe_sampler     *own_sampler = NULL;
    smoe_detokenizer *det = NULL;
    smoe_batch        batch = {0};
    text_state        ts = {.p = params};
    smoe_sampler     *sampler = params->sampler;
    if (!sampler) SMOE_GOTO_TRY(st, done, smoe_sampler_init(&params->sampling, &own_sampler));
    if (!sampler) sampler = own_sampler;
    SMOE_GOTO_TRY(st, done, smoe_detokenizer_init(tok, params->detokenize_flags, &det));
    SMOE_GOTO_TRY(st, done, smoe_batch_init((int32_t)n_prompt, &batch));

    const int32_t seq = params->seq_id;
    int32_t       pos = smoe_kv_seq_pos_next(ctx, seq);
    for (size_t i = 0; i < n_prompt; i++) {
        SMOE_GOTO_TRY(st, done, smoe_batch_add(&batch, prompt[i], pos++, seq, i + 1 == n_prompt));
        smoe_sampler_accept(sampler, prompt[i]); /* penalties see the prompt, as llama.cpp's do */
    }
    double t0 = now_ms();
    SMOE_GOTO_TRY(st, done, smoe_decode(ctx, &batch));
    double t1 = now_ms();
    if (result) {
        result->n_prompt = (int32_t)n_prompt;
        result->prompt_ms = t1 - t0;
    }

    const float     *logits = smoe_get_logits(ctx, batch.n_tokens - 1);
    const int32_t    eos = smoe_tokenizer_eos(tok);
    smoe_stop_reason reason = SMOE_STOP_MAX_TOKENS;
    for (int32_t n = 0; n < params->max_tokens; n++) {
        SMOE_GOTO_IF(!logits, st, done, SMOE_ERR_INVALID_ARGUMENT, "generate: no logits after decode");
        int32_t t = -1;
        SMOE_GOTO_TRY(st, done, smoe_sampler_sample(sampler, logits, info.n_vocab, &t));
        if (result) result->n_generated = n + 1;
        if (params->out_tokens) params->out_tokens[n] = t;
        /* every sampled token goes into the cache, so the next turn continues after it */
        batch.n_tokens = 0;
        SMOE_GOTO_TRY(st, done, smoe_batch_add(&batch, t, pos++, seq, true));
        SMOE_GOTO_TRY(st, done, smoe_decode(ctx, &batch));
        logits = smoe_get_logits(ctx, 0);
        if (t == eos && !params->ignore_eos) {
            reason = SMOE_STOP_EOS;
            break;
        }
        const char *piece = NULL;
        size_t      plen = 0;
        SMOE_GOTO_TRY(st, done, smoe_detokenizer_feed(det, t, &piece, &plen));
        SMOE_GOTO_TRY(st, done, text_push(&ts, piece, plen, false));
        if (ts.stopped_by_string) {
            reason = SMOE_STOP_STRING;
            break;
        }
        if (ts.stopped_by_callback) {
            reason = SMOE_STOP_CALLBACK;
            break;
        }
    }
    if (!ts.stopped_by_string && !ts.stopped_by_callback) {
        const char *piece = NULL;
        size_t      plen = 0;
        SMOE_GOTO_TRY(st, done, smoe_detokenizer_flush(det, &piece, &plen));
        SMOE_GOTO_TRY(st, done, text_push(&ts, piece, plen, true));
        if (ts.stopped_by_string) reason = SMOE_STOP_STRING;
    }
    if (result) {
        result->generate_ms = now_ms() - t1;
        result->stop_reason = reason;
    }
done:
    free(ts.buf);
    smoe_batch_free(&batch);
    smoe_detokenizer_free(det);
    smoe_sampler_free(own_sampler);
    return st;
}
