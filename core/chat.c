/*
 * chat.c - conversations to prompt tokens as mistral-common's encode_chat_completion does with the v1 tokenizer
 * (InstructTokenizerV1 + InstructRequestNormalizer in mistral_common/tokens/tokenizers/instruct.py and
 * protocol/instruct/normalize.py), and the text form of Hugging Face's Mixtral-8x7B-Instruct-v0.1 chat template.
 *
 * mistral-common v1, for the record:
 *   system_prompt = "\n\n".join(content of every system message whose content is not empty), or none
 *   tokens = [BOS]
 *   user (the first one gets "{system_prompt}\n\n" in front when there is a system prompt):
 *       tokens += encode("[INST] " + content + " [/INST]")           (sentencepiece, dummy prefix, no BOS/EOS)
 *   assistant: tokens += encode(content) + [EOS]                      (no EOS when it is a prefix, i.e. last)
 * Its normalizer merges consecutive messages of one role (joined by "\n\n") and inserts an empty user message before
 * a leading assistant; smoe rejects those conversations instead (see smoe.h).
 */
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

typedef enum { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT } chat_role;

static smoe_status parse_roles(const smoe_chat_message *msgs, size_t n, chat_role *roles) {
    for (size_t i = 0; i < n; i++) {
        SMOE_RETURN_IF(!msgs[i].role || !msgs[i].content, SMOE_ERR_INVALID_ARGUMENT,
                       "chat: message %zu has a NULL role or content", i);
        if (!strcmp(msgs[i].role, "system"))
            roles[i] = ROLE_SYSTEM;
        else if (!strcmp(msgs[i].role, "user"))
            roles[i] = ROLE_USER;
        else if (!strcmp(msgs[i].role, "assistant"))
            roles[i] = ROLE_ASSISTANT;
        else
            return smoe_set_error(SMOE_ERR_INVALID_ARGUMENT,
                                  "chat: message %zu has role '%.40s' (expected system, user or assistant)", i,
                                  msgs[i].role);
        size_t len = strlen(msgs[i].content), ok = smoe_utf8_valid_prefix(msgs[i].content, len);
        SMOE_RETURN_IF(ok != len, SMOE_ERR_INVALID_TEXT, "chat: message %zu: invalid UTF-8 at byte offset %zu", i,
                       ok);
    }
    return SMOE_OK;
}

/* A growable string. */
typedef struct sbuf {
    char  *s;
    size_t n, cap;
} sbuf;

static smoe_status sbuf_put(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        SMOE_RETURN_IF(!p, SMOE_ERR_OUT_OF_MEMORY, "chat: out of memory");
        b->s   = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
    return SMOE_OK;
}

static smoe_status sbuf_puts(sbuf *b, const char *s) { return sbuf_put(b, s, strlen(s)); }

static smoe_status chat_encode(const smoe_tokenizer *tok, const smoe_chat_message *msgs, size_t n,
                               const chat_role *roles, smoe_token_vec *out) {
    /* the system prompt */
    sbuf        sys = {0}, seg = {0};
    smoe_status st  = SMOE_OK;
    bool        has_sys = false;
    for (size_t i = 0; i < n; i++) {
        if (roles[i] != ROLE_SYSTEM || !msgs[i].content[0]) continue;
        if (has_sys) SMOE_GOTO_TRY(st, done, sbuf_puts(&sys, "\n\n"));
        SMOE_GOTO_TRY(st, done, sbuf_puts(&sys, msgs[i].content));
        has_sys = true;
    }

    /* the turns must alternate user, assistant, ... */
    size_t turn = 0, last = n; /* index of the last non-system message */
    for (size_t i = 0; i < n; i++) {
        if (roles[i] == ROLE_SYSTEM) continue;
        chat_role want = (turn % 2 == 0) ? ROLE_USER : ROLE_ASSISTANT;
        if (roles[i] != want) {
            st = smoe_set_error(SMOE_ERR_INVALID_ARGUMENT,
                                turn == 0 ? "chat: message %zu: the conversation must start with a user message "
                                            "(after optional system messages), not '%s'"
                                          : "chat: message %zu: roles must alternate user/assistant; got two '%s' "
                                            "messages in a row",
                                i, msgs[i].role);
            goto done;
        }
        SMOE_GOTO_IF(roles[i] == ROLE_ASSISTANT && !msgs[i].content[0], st, done, SMOE_ERR_INVALID_ARGUMENT,
                     "chat: message %zu: assistant message with empty content", i);
        turn++;
        last = i;
    }

    if (tok->bos_id >= 0) SMOE_GOTO_TRY(st, done, smoe_token_vec_push(out, tok->bos_id));
    bool first_user = true;
    for (size_t i = 0; i <= n; i++) {
        bool synthetic = (i == n && turn == 0); /* only system messages: one empty user turn */
        if (i == n && !synthetic) break;
        chat_role r = synthetic ? ROLE_USER : roles[i];
        if (r == ROLE_SYSTEM) continue;
        const char *content = synthetic ? "" : msgs[i].content;
        seg.n               = 0;
        if (r == ROLE_USER) {
            SMOE_GOTO_TRY(st, done, sbuf_puts(&seg, "[INST] "));
            if (first_user && has_sys) {
                SMOE_GOTO_TRY(st, done, sbuf_put(&seg, sys.s, sys.n));
                SMOE_GOTO_TRY(st, done, sbuf_puts(&seg, "\n\n"));
            }
            SMOE_GOTO_TRY(st, done, sbuf_puts(&seg, content));
            SMOE_GOTO_TRY(st, done, sbuf_puts(&seg, " [/INST]"));
            first_user = false;
            SMOE_GOTO_TRY(st, done, smoe_tokenizer_encode(tok, seg.s, seg.n, 0, out));
        } else {
            SMOE_GOTO_TRY(st, done, smoe_tokenizer_encode(tok, content, strlen(content), 0, out));
            if (i != last && tok->eos_id >= 0) SMOE_GOTO_TRY(st, done, smoe_token_vec_push(out, tok->eos_id));
        }
    }
done:
    free(sys.s);
    free(seg.s);
    return st;
}

smoe_status smoe_chat_tokenize(const smoe_tokenizer *tok, const smoe_chat_message *msgs, size_t n_msgs,
                               int32_t *ids, size_t cap, size_t *n_out) {
    SMOE_RETURN_IF(!tok || !n_out, SMOE_ERR_INVALID_ARGUMENT, "smoe_chat_tokenize: tok and n_out must not be NULL");
    *n_out = 0;
    SMOE_RETURN_IF(!msgs || n_msgs == 0, SMOE_ERR_INVALID_ARGUMENT, "chat: the conversation has no messages");
    SMOE_RETURN_IF(!ids && cap, SMOE_ERR_INVALID_ARGUMENT, "smoe_chat_tokenize: ids is NULL but cap is %zu", cap);
    chat_role *roles = malloc(n_msgs * sizeof(*roles));
    SMOE_RETURN_IF(!roles, SMOE_ERR_OUT_OF_MEMORY, "chat: out of memory");
    smoe_token_vec v  = {0};
    smoe_status    st = parse_roles(msgs, n_msgs, roles);
    if (st == SMOE_OK) st = chat_encode(tok, msgs, n_msgs, roles, &v);
    if (st == SMOE_OK) {
        *n_out = v.n;
        if (v.n > cap)
            st = smoe_set_error(SMOE_ERR_BUFFER_TOO_SMALL, "smoe_chat_tokenize: %zu ids do not fit in a buffer of %zu",
                                v.n, cap);
        else if (v.n)
            memcpy(ids, v.data, v.n * sizeof(*ids));
    }
    smoe_token_vec_free(&v);
    free(roles);
    return st;
}

/* Hugging Face's template (tokenizer_config.json of Mixtral-8x7B-Instruct-v0.1):
 *   {{ bos_token }}{% for message in messages %}
 *   {% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must
 *   alternate user/assistant/user/assistant/...') }}{% endif %}
 *   {% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}
 *   {% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}
 *   {% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %} */
smoe_status smoe_chat_format(const smoe_tokenizer *tok, const smoe_chat_message *msgs, size_t n_msgs, char *buf,
                             size_t cap, size_t *n_out) {
    SMOE_RETURN_IF(!tok || !n_out, SMOE_ERR_INVALID_ARGUMENT, "smoe_chat_format: tok and n_out must not be NULL");
    *n_out = 0;
    SMOE_RETURN_IF(!msgs && n_msgs, SMOE_ERR_INVALID_ARGUMENT, "smoe_chat_format: msgs is NULL");
    SMOE_RETURN_IF(!buf && cap, SMOE_ERR_INVALID_ARGUMENT, "smoe_chat_format: buf is NULL but cap is %zu", cap);
    sbuf        b  = {0};
    smoe_status st = SMOE_OK;
    if (tok->bos_id >= 0) SMOE_GOTO_TRY(st, done, sbuf_put(&b, tok->pieces[tok->bos_id], tok->piece_lens[tok->bos_id]));
    for (size_t i = 0; i < n_msgs; i++) {
        SMOE_GOTO_IF(!msgs[i].role || !msgs[i].content, st, done, SMOE_ERR_INVALID_ARGUMENT,
                     "chat: message %zu has a NULL role or content", i);
        bool is_user = !strcmp(msgs[i].role, "user");
        SMOE_GOTO_IF(is_user != (i % 2 == 0), st, done, SMOE_ERR_INVALID_ARGUMENT,
                     "chat: message %zu ('%.40s'): conversation roles must alternate user/assistant/user/assistant/... "
                     "(the Mixtral template has no system role)",
                     i, msgs[i].role);
        if (is_user) {
            SMOE_GOTO_TRY(st, done, sbuf_puts(&b, "[INST] "));
            SMOE_GOTO_TRY(st, done, sbuf_puts(&b, msgs[i].content));
            SMOE_GOTO_TRY(st, done, sbuf_puts(&b, " [/INST]"));
        } else {
            SMOE_GOTO_IF(strcmp(msgs[i].role, "assistant") != 0, st, done, SMOE_ERR_INVALID_ARGUMENT,
                         "chat: message %zu has role '%.40s': only user and assistant roles are supported", i,
                         msgs[i].role);
            SMOE_GOTO_TRY(st, done, sbuf_puts(&b, msgs[i].content));
            if (tok->eos_id >= 0)
                SMOE_GOTO_TRY(st, done, sbuf_put(&b, tok->pieces[tok->eos_id], tok->piece_lens[tok->eos_id]));
        }
    }
    *n_out = b.n;
    if (b.n + 1 > cap) {
        st = smoe_set_error(SMOE_ERR_BUFFER_TOO_SMALL, "smoe_chat_format: %zu bytes of text (+1 NUL) do not fit in %zu",
                            b.n, cap);
    } else {
        if (b.n) memcpy(buf, b.s, b.n);
        buf[b.n] = '\0';
    }
done:
    free(b.s);
    return st;
}
