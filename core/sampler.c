/*
 * sampler.c - token samplers: a small vtable (smoe_sampler_i) and the built-in stages of the standard chain.
 *
 * Invariants: a stage keeps `cur->size >= 1` (it never removes the best candidate); only final stages (greedy, dist)
 * set `selected`. Probabilities are computed in double and written to `p` as float. The RNG is a splitmix64-seeded
 * xoshiro256**, so draws are a pure function of the seed and the logits on every platform.
 */
#include "status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct smoe_sampler {
    const smoe_sampler_i *iface;
    void                 *ctx;
};

smoe_status smoe_sampler_init_custom(const smoe_sampler_i *iface, void *ctx, smoe_sampler **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "sampler: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(!iface || !iface->apply, SMOE_ERR_INVALID_ARGUMENT, "sampler: interface without apply");
    smoe_sampler *s = calloc(1, sizeof(*s));
    SMOE_RETURN_IF(!s, SMOE_ERR_OUT_OF_MEMORY, "sampler: out of memory");
    s->iface = iface;
    s->ctx = ctx;
    *out = s;
    return SMOE_OK;
}

void *smoe_sampler_ctx(smoe_sampler *s) { return s ? s->ctx : NULL; }

const char *smoe_sampler_name(const smoe_sampler *s) {
    if (!s) return "(null)";
    return s->iface->name ? s->iface->name(s) : "custom";
}

smoe_status smoe_sampler_apply(smoe_sampler *s, smoe_token_data_array *cur) {
    SMOE_RETURN_IF(!s || !cur || !cur->data, SMOE_ERR_INVALID_ARGUMENT, "sampler apply: NULL argument");
    SMOE_RETURN_IF(cur->size == 0, SMOE_ERR_INVALID_ARGUMENT, "sampler apply: no candidates");
    return s->iface->apply(s, cur);
}

void smoe_sampler_accept(smoe_sampler *s, int32_t token) {
    if (s && s->iface->accept) s->iface->accept(s, token);
}

void smoe_sampler_reset(smoe_sampler *s) {
    if (s && s->iface->reset) s->iface->reset(s);
}

void smoe_sampler_free(smoe_sampler *s) {
    if (!s) return;
    if (s->iface->free) s->iface->free(s);
    free(s);
}

/* Makes a stage whose ctx is a malloc'd copy of `ctx_init` (size bytes); plain stages free it with free(). */
static smoe_status make_stage(const smoe_sampler_i *iface, const void *ctx_init, size_t size, smoe_sampler **out) {
    void *ctx = NULL;
    if (size) {
        ctx = malloc(size);
        SMOE_RETURN_IF(!ctx, SMOE_ERR_OUT_OF_MEMORY, "sampler: out of memory");
        memcpy(ctx, ctx_init, size);
    }
    smoe_status st = smoe_sampler_init_custom(iface, ctx, out);
    if (st != SMOE_OK) free(ctx);
    return st;
}

static void free_ctx(smoe_sampler *s) { free(s->ctx); }

/* ---- helpers ---- */

static int cmp_logit_desc(const void *a, const void *b) {
    const smoe_token_data *x = a, *y = b;
    if (x->logit > y->logit) return -1;
    if (x->logit < y->logit) return 1;
    return (x->id > y->id) - (x->id < y->id); /* ties: lower id first, deterministic */
}

static void sort_desc(smoe_token_data_array *cur) {
    if (!cur->sorted) {
        qsort(cur->data, cur->size, sizeof(*cur->data), cmp_logit_desc);
        cur->sorted = true;
    }
}

/* Softmax over the candidates into p; returns false if no candidate has a finite logit. */
static bool softmax(smoe_token_data_array *cur) {
    float max = -INFINITY;
    for (size_t i = 0; i < cur->size; i++)
        if (cur->data[i].logit > max) max = cur->data[i].logit;
    if (!isfinite(max)) return false;
    double sum = 0.0;
    for (size_t i = 0; i < cur->size; i++) sum += exp((double)cur->data[i].logit - max);
    for (size_t i = 0; i < cur->size; i++) cur->data[i].p = (float)(exp((double)cur->data[i].logit - max) / sum);
    return true;
}

/* ---- greedy ---- */

static const char *greedy_name(const smoe_sampler *s) { return "greedy"; }

static smoe_status greedy_apply(smoe_sampler *s, smoe_token_data_array *cur) {
    size_t best = 0;
    for (size_t i = 1; i < cur->size; i++) {
        const smoe_token_data *a = &cur->data[i], *b = &cur->data[best];
        if (a->logit > b->logit || (a->logit == b->logit && a->id < b->id)) best = i;
    }
    SMOE_RETURN_IF(isnan(cur->data[best].logit), SMOE_ERR_INVALID_ARGUMENT, "greedy: logits are NaN");
    cur->selected = (int64_t)best;
    return SMOE_OK;
}

static const smoe_sampler_i greedy_i = {.name = greedy_name, .apply = greedy_apply};

smoe_status smoe_sampler_init_greedy(smoe_sampler **out) { return make_stage(&greedy_i, NULL, 0, out); }

/* ---- dist: seeded draw ---- */

typedef struct dist_ctx {
    uint64_t seed;
    uint64_t s[4];
} dist_ctx;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4]) {
    const uint64_t r = rotl64(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return r;
}

static void dist_seed(dist_ctx *c) {
    uint64_t x = c->seed;
    for (int i = 0; i < 4; i++) c->s[i] = splitmix64(&x);
}

static const char *dist_name(const smoe_sampler *s) { return "dist"; }

static smoe_status dist_apply(smoe_sampler *s, smoe_token_data_array *cur) {
    dist_ctx *c = s->ctx;
    SMOE_RETURN_IF(!softmax(cur), SMOE_ERR_INVALID_ARGUMENT, "dist: no candidate has a finite logit");
    const double u = (double)(xoshiro_next(c->s) >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
    double acc = 0.0;
    size_t pick = cur->size - 1;
    for (size_t i = 0; i < cur->size; i++) {
        acc += cur->data[i].p;
        if (u < acc) {
            pick = i;
            break;
        }
    }
    cur->selected = (int64_t)pick;
    return SMOE_OK;
}

static void dist_reset(smoe_sampler *s) { dist_seed(s->ctx); }

static const smoe_sampler_i dist_i = {.name = dist_name, .apply = dist_apply, .reset = dist_reset, .free = free_ctx};

smoe_status smoe_sampler_init_dist(uint64_t seed, smoe_sampler **out) {
    dist_ctx c = {.seed = seed};
    dist_seed(&c);
    return make_stage(&dist_i, &c, sizeof(c), out);
}

/* ---- temperature ---- */

static const char *temp_name(const smoe_sampler *s) { return "temp"; }

static smoe_status temp_apply(smoe_sampler *s, smoe_token_data_array *cur) {
    const float t = *(const float *)s->ctx;
    for (size_t i = 0; i < cur->size; i++) cur->data[i].logit /= t;
    return SMOE_OK;
}

static const smoe_sampler_i temp_i = {.name = temp_name, .apply = temp_apply, .free = free_ctx};

smoe_status smoe_sampler_init_temp(float temp, smoe_sampler **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "temp: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(!(temp > 0.0f) || !isfinite(temp), SMOE_ERR_INVALID_ARGUMENT,
                   "temperature %g: must be > 0 (use greedy for 0)", (double)temp);
    return make_stage(&temp_i, &temp, sizeof(temp), out);
}

/* ---- top-k ---- */

static const char *top_k_name(const smoe_sampler *s) { return "top-k"; }

static smoe_status top_k_apply(smoe_sampler *s, smoe_token_data_array *cur) {
    const int32_t k = *(const int32_t *)s->ctx;
    if (k <= 0 || (size_t)k >= cur->size) return SMOE_OK;
    sort_desc(cur);
    cur->size = (size_t)k;
    return SMOE_OK;
}

static const smoe_sampler_i top_k_i = {.name = top_k_name, .apply = top_k_apply, .free = free_ctx};

smoe_status smoe_sampler_init_top_k(int32_t k, smoe_sampler **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "top-k: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(k < 0, SMOE_ERR_INVALID_ARGUMENT, "top-k %d: must be >= 0 (0 = off)", (int)k);
    return make_stage(&top_k_i, &k, sizeof(k), out);
}

/* ---- top-p and min-p ---- */

typedef struct p_ctx {
    float  p;
    size_t min_keep;
} p_ctx;

static const char *top_p_name(const smoe_sampler *s) { return "top-p"; }

static smoe_status top_p_apply(smoe_sampler *s, smoe_token_data_array *cur) {
    const p_ctx *c = s->ctx;
    if (c->p >= 1.0f) return SMOE_OK;
    sort_desc(cur);
    SMOE_RETURN_IF(!softmax(cur), SMOE_ERR_INVALID_ARGUMENT, "top-p: no candidate has a finite logit");
    double acc = 0.0;
    size_t keep = cur->size;
    for (size_t i = 0; i < cur->size; i++) {
        acc += cur->data[i].p;
        if (acc >= c->p && i + 1 >= c->min_keep) {
            keep = i + 1;
            break;
        }
    }
    cur->size = keep;
    return SMOE_OK;
}

static const smoe_sampler_i top_p_i = {.name = top_p_name, .apply = top_p_apply, .free = free_ctx};

smoe_status smoe_sampler_init_top_p(float p, size_t min_keep, smoe_sampler **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "top-p: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(!(p > 0.0f && p <= 1.0f), SMOE_ERR_INVALID_ARGUMENT, "top-p %g: must be in (0, 1]", (double)p);
    p_ctx c = {p, min_keep ? min_keep : 1};
    return make_stage(&top_p_i, &c, sizeof(c), out);
}

static const char *min_p_name(const smoe_sampler *s) { return "min-p"; }

static smoe_status min_p_apply(smoe_sampler *s, smoe_token_data_array *cur) {
    const p_ctx *c = s->ctx;
    if (c->p <= 0.0f) return SMOE_OK;
    sort_desc(cur);
    /* p_i >= min_p * p_max  <=>  logit_i >= logit_max + log(min_p) */
    const float thresh = cur->data[0].logit + logf(c->p);
    size_t keep = 1;
    while (keep < cur->size && (cur->data[keep].logit >= thresh || keep < c->min_keep)) keep++;
    cur->size = keep;
    return SMOE_OK;
}

static const smoe_sampler_i min_p_i = {.name = min_p_name, .apply = min_p_apply, .free = free_ctx};

smoe_status smoe_sampler_init_min_p(float p, size_t min_keep, smoe_sampler **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "min-p: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(!(p >= 0.0f && p <= 1.0f), SMOE_ERR_INVALID_ARGUMENT, "min-p %g: must be in [0, 1]", (double)p);
    p_ctx c = {p, min_keep ? min_keep : 1};
    return make_stage(&min_p_i, &c, sizeof(c), out);
}

/* ---- penalties over a ring of the last accepted tokens ---- */

typedef struct penalties_ctx {
    int32_t  last_n; /* -1 = unbounded history */
    float    repeat, frequency, presence;
    int32_t *ring;
    size_t   cap, len, head; /* ring buffer of accepted tokens */
} penalties_ctx;

static const char *penalties_name(const smoe_sampler *s) { return "penalties"; }

static void penalties_accept(smoe_sampler *s, int32_t token) {
    penalties_ctx *c = s->ctx;
    if (c->last_n == 0) return;
    if (c->len == c->cap) {
        if (c->last_n > 0) { /* full window: overwrite the oldest */
            c->ring[c->head] = token;
            c->head = (c->head + 1) % c->cap;
            return;
        }
        size_t ncap = c->cap ? c->cap * 2 : 256;
        int32_t *nr = malloc(ncap * sizeof(*nr));
        if (!nr) return; /* history stays bounded by what we could keep; sampling still works */
        for (size_t i = 0; i < c->len; i++) nr[i] = c->ring[(c->head + i) % c->cap];
        free(c->ring);
        c->ring = nr;
        c->cap = ncap;
        c->head = 0;
    }
    c->ring[(c->head + c->len) % c->cap] = token;
    c->len++;
}

static int cmp_i32(const void *a, const void *b) {
    const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static smoe_status penalties_apply(smoe_sampler *s, smoe_token_data_array *cur) {
    penalties_ctx *c = s->ctx;
    if (c->len == 0 || (c->repeat == 1.0f && c->frequency == 0.0f && c->presence == 0.0f)) return SMOE_OK;
    /* count occurrences: sort a copy of the window, then walk candidates looked up by binary search */
    int32_t *win = malloc(c->len * sizeof(*win));
    SMOE_RETURN_IF(!win, SMOE_ERR_OUT_OF_MEMORY, "penalties: out of memory");
    for (size_t i = 0; i < c->len; i++) win[i] = c->ring[(c->head + i) % c->cap];
    qsort(win, c->len, sizeof(*win), cmp_i32);
    for (size_t i = 0; i < cur->size; i++) {
        smoe_token_data *t = &cur->data[i];
        const int32_t *hit = bsearch(&t->id, win, c->len, sizeof(*win), cmp_i32);
        if (!hit) continue;
        size_t lo = (size_t)(hit - win), hi = lo;
        while (lo > 0 && win[lo - 1] == t->id) lo--;
        while (hi + 1 < c->len && win[hi + 1] == t->id) hi++;
        const float count = (float)(hi - lo + 1);
        if (t->logit > 0.0f) t->logit /= c->repeat;
        else t->logit *= c->repeat;
        t->logit -= count * c->frequency + c->presence;
    }
    free(win);
    cur->sorted = false;
    return SMOE_OK;
}

static void penalties_reset(smoe_sampler *s) {
    penalties_ctx *c = s->ctx;
    c->len = c->head = 0;
}

static void penalties_free(smoe_sampler *s) {
    penalties_ctx *c = s->ctx;
    if (c) free(c->ring);
    free(c);
}

static const smoe_sampler_i penalties_i = {.name = penalties_name, .accept = penalties_accept,
                                           .apply = penalties_apply, .reset = penalties_reset,
                                           .free = penalties_free};

smoe_status smoe_sampler_init_penalties(int32_t last_n, float repeat, float frequency, float presence,
                                        smoe_sampler **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "penalties: out is NULL");
    *out = NULL;
    SMOE_RETURN_IF(last_n < -1, SMOE_ERR_INVALID_ARGUMENT, "repeat-last-n %d: must be >= -1", (int)last_n);
    SMOE_RETURN_IF(!(repeat > 0.0f) || !isfinite(repeat), SMOE_ERR_INVALID_ARGUMENT,
                   "repeat penalty %g: must be > 0 (1 = off)", (double)repeat);
    SMOE_RETURN_IF(!isfinite(frequency) || !isfinite(presence), SMOE_ERR_INVALID_ARGUMENT,
                   "frequency/presence penalties must be finite");
    penalties_ctx c = {.last_n = last_n, .repeat = repeat, .frequency = frequency, .presence = presence};
    if (last_n > 0) {
        c.ring = malloc((size_t)last_n * sizeof(*c.ring));
        SMOE_RETURN_IF(!c.ring, SMOE_ERR_OUT_OF_MEMORY, "penalties: out of memory");
        c.cap = (size_t)last_n;
    }
    smoe_status st = make_stage(&penalties_i, &c, sizeof(c), out);
    if (st != SMOE_OK) free(c.ring);
    return st;
}

/* ---- chain ---- */

typedef struct chain_ctx {
    smoe_sampler  **stages;
    size_t          n, cap;
    smoe_token_data *buf; /* candidates for smoe_sampler_sample, grown to n_vocab once */
    size_t          buf_cap;
} chain_ctx;

static const char *chain_name(const smoe_sampler *s) { return "chain"; }

static void chain_accept(smoe_sampler *s, int32_t token) {
    chain_ctx *c = s->ctx;
    for (size_t i = 0; i < c->n; i++) smoe_sampler_accept(c->stages[i], token);
}

static smoe_status chain_apply(smoe_sampler *s, smoe_token_data_array *cur) {
    chain_ctx *c = s->ctx;
    for (size_t i = 0; i < c->n; i++) {
        SMOE_TRY(c->stages[i]->iface->apply(c->stages[i], cur));
        SMOE_RETURN_IF(cur->size == 0, SMOE_ERR_INVALID_ARGUMENT, "sampler '%s' removed every candidate",
                       smoe_sampler_name(c->stages[i]));
    }
    return SMOE_OK;
}

static void chain_reset(smoe_sampler *s) {
    chain_ctx *c = s->ctx;
    for (size_t i = 0; i < c->n; i++) smoe_sampler_reset(c->stages[i]);
}

static void chain_free(smoe_sampler *s) {
    chain_ctx *c = s->ctx;
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) smoe_sampler_free(c->stages[i]);
    free(c->stages);
    free(c->buf);
    free(c);
}

static const smoe_sampler_i chain_i = {.name = chain_name, .accept = chain_accept, .apply = chain_apply,
                                       .reset = chain_reset, .free = chain_free};

smoe_status smoe_sampler_chain_init(smoe_sampler **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "chain: out is NULL");
    *out = NULL;
    chain_ctx *c = calloc(1, sizeof(*c));
    SMOE_RETURN_IF(!c, SMOE_ERR_OUT_OF_MEMORY, "chain: out of memory");
    smoe_status st = smoe_sampler_init_custom(&chain_i, c, out);
    if (st != SMOE_OK) free(c);
    return st;
}

smoe_status smoe_sampler_chain_add(smoe_sampler *chain, smoe_sampler *s) {
    if (!chain || chain->iface != &chain_i || !s) {
        smoe_sampler_free(s);
        return smoe_set_error(SMOE_ERR_INVALID_ARGUMENT, "chain add: not a chain, or NULL sampler");
    }
    chain_ctx *c = chain->ctx;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 8;
        smoe_sampler **ns = realloc(c->stages, ncap * sizeof(*ns));
        if (!ns) {
            smoe_sampler_free(s);
            return smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "chain add: out of memory");
        }
        c->stages = ns;
        c->cap = ncap;
    }
    c->stages[c->n++] = s;
    return SMOE_OK;
}

/* ---- the standard chain ---- */

smoe_sampler_params smoe_sampler_default_params(void) {
    return (smoe_sampler_params){
        .size = sizeof(smoe_sampler_params),
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .repeat_last_n = 64,
        .frequency_penalty = 0.0f,
        .presence_penalty = 0.0f,
        .seed = 0,
    };
}

smoe_status smoe_sampler_init(const smoe_sampler_params *params, smoe_sampler **out) {
    SMOE_RETURN_IF(!out, SMOE_ERR_INVALID_ARGUMENT, "sampler: out is NULL");
    *out = NULL;
    const smoe_sampler_params def = smoe_sampler_default_params();
    const smoe_sampler_params *p = params ? params : &def;
    SMOE_RETURN_IF(p->size != sizeof(smoe_sampler_params), SMOE_ERR_INVALID_ARGUMENT,
                   "sampler params: size %u, expected %zu (use smoe_sampler_default_params)", p->size,
                   sizeof(smoe_sampler_params));
    SMOE_RETURN_IF(isnan(p->temperature), SMOE_ERR_INVALID_ARGUMENT, "temperature is NaN");
    smoe_sampler *chain = NULL;
    SMOE_TRY(smoe_sampler_chain_init(&chain));
    smoe_status st = SMOE_OK;
    smoe_sampler *s = NULL;
#define ADD(expr)                                                                                                      \
    do {                                                                                                               \
        SMOE_GOTO_TRY(st, fail, (expr));                                                                               \
        SMOE_GOTO_TRY(st, fail, smoe_sampler_chain_add(chain, s));                                                     \
    } while (0)
    if (p->repeat_last_n != 0 &&
        (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f))
        ADD(smoe_sampler_init_penalties(p->repeat_last_n, p->repeat_penalty, p->frequency_penalty,
                                        p->presence_penalty, &s));
    else
        SMOE_GOTO_IF(p->repeat_penalty <= 0.0f || p->repeat_last_n < -1, st, fail, SMOE_ERR_INVALID_ARGUMENT,
                     "repeat penalty %g / last-n %d out of range", (double)p->repeat_penalty, (int)p->repeat_last_n);
    if (p->temperature <= 0.0f) {
        /* greedy still validates the other parameters so a typo is caught whatever the temperature */
        SMOE_GOTO_IF(p->top_k < 0, st, fail, SMOE_ERR_INVALID_ARGUMENT, "top-k %d: must be >= 0", (int)p->top_k);
        SMOE_GOTO_IF(!(p->top_p > 0.0f && p->top_p <= 1.0f), st, fail, SMOE_ERR_INVALID_ARGUMENT,
                     "top-p %g: must be in (0, 1]", (double)p->top_p);
        SMOE_GOTO_IF(!(p->min_p >= 0.0f && p->min_p <= 1.0f), st, fail, SMOE_ERR_INVALID_ARGUMENT,
                     "min-p %g: must be in [0, 1]", (double)p->min_p);
        ADD(smoe_sampler_init_greedy(&s));
    } else {
        ADD(smoe_sampler_init_top_k(p->top_k, &s));
        ADD(smoe_sampler_init_top_p(p->top_p, 1, &s));
        ADD(smoe_sampler_init_min_p(p->min_p, 1, &s));
        ADD(smoe_sampler_init_temp(p->temperature, &s));
        ADD(smoe_sampler_init_dist(p->seed, &s));
    }
#undef ADD
    *out = chain;
    return SMOE_OK;
fail:
    smoe_sampler_free(chain);
    return st;
}

smoe_status smoe_sampler_sample(smoe_sampler *s, const float *logits, int32_t n_vocab, int32_t *out) {
    SMOE_RETURN_IF(!s || !logits || !out, SMOE_ERR_INVALID_ARGUMENT, "sample: NULL argument");
    SMOE_RETURN_IF(n_vocab <= 0, SMOE_ERR_INVALID_ARGUMENT, "sample: n_vocab %d", (int)n_vocab);
    smoe_token_data *buf = NULL;
    smoe_token_data *owned = NULL;
    if (s->iface == &chain_i) { /* the chain keeps its buffer: no allocation per token */
        chain_ctx *c = s->ctx;
        if (c->buf_cap < (size_t)n_vocab) {
            smoe_token_data *nb = realloc(c->buf, (size_t)n_vocab * sizeof(*nb));
            SMOE_RETURN_IF(!nb, SMOE_ERR_OUT_OF_MEMORY, "sample: out of memory");
            c->buf = nb;
            c->buf_cap = (size_t)n_vocab;
        }
        buf = c->buf;
    } else {
        buf = owned = malloc((size_t)n_vocab * sizeof(*buf));
        SMOE_RETURN_IF(!buf, SMOE_ERR_OUT_OF_MEMORY, "sample: out of memory");
    }
    for (int32_t i = 0; i < n_vocab; i++) buf[i] = (smoe_token_data){i, logits[i], 0.0f};
    smoe_token_data_array cur = {buf, (size_t)n_vocab, -1, false};
    smoe_status st = s->iface->apply(s, &cur);
    if (st == SMOE_OK && (cur.selected < 0 || (size_t)cur.selected >= cur.size))
        st = smoe_set_error(SMOE_ERR_INVALID_ARGUMENT, "sampler '%s' selected no token (end the chain with greedy "
                                                       "or dist)", smoe_sampler_name(s));
    if (st == SMOE_OK) {
        *out = cur.data[cur.selected].id;
        smoe_sampler_accept(s, *out);
    }
    free(owned);
    return st;
}
