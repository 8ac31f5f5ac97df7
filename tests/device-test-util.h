/*
 * device-test-util.h - checks shared by the device backends' cmocka tests (test-vulkan.c, test-cuda-fake.c).
 * Include after <cmocka.h> and graph-test-util.h.
 */
#ifndef SMOE_DEVICE_TEST_UTIL_H
#define SMOE_DEVICE_TEST_UTIL_H

#include "core/backend.h"
#include "core/graph.h"
#include "core/sched.h"
#include "smoe.h"

#include <stdio.h>
#include <string.h>

#define DT_NE(...) ((const int64_t[]){__VA_ARGS__})

/* A buffer of `size` bytes on b and an I8 tensor `t` covering it, for transfer tests. */
static inline smoe_buffer *dt_bytes_buffer(smoe_backend *b, size_t size, smoe_tensor *t) {
    smoe_buffer *buf = NULL;
    assert_int_equal(smoe_backend_buffer_alloc(b, size, &buf), SMOE_OK);
    memset(t, 0, sizeof(*t));
    assert_int_equal(smoe_tensor_init_layout(t, SMOE_TYPE_I8, 1, DT_NE((int64_t)size)), SMOE_OK);
    snprintf(t->name, sizeof(t->name), "bytes");
    assert_int_equal(smoe_tensor_bind(t, buf, 0), SMOE_OK);
    return buf;
}

/* Runs g on s and synchronizes b: case i must pass (expect NULL) or fail with SMOE_ERR_INVALID_ARGUMENT and a
 * message naming `expect`. */
static inline void dt_run_expect(smoe_sched *s, smoe_graph *g, smoe_backend *b, size_t i, const char *expect) {
    smoe_status st = smoe_sched_compute(s, g);
    if (st == SMOE_OK) st = smoe_backend_synchronize(b);
    if (!expect) {
        if (st != SMOE_OK) fail_msg("case %zu: %s", i, smoe_last_error());
    } else {
        assert_int_equal(st, SMOE_ERR_INVALID_ARGUMENT);
        if (!strstr(smoe_last_error(), expect))
            fail_msg("case %zu: '%s' does not name %s", i, smoe_last_error(), expect);
    }
}

/* Ids out of range found on the device (GET_ROWS rows, MUL_MAT_ID experts, KV_WRITE cells) come back from the
 * next synchronize as SMOE_ERR_INVALID_ARGUMENT naming the node; a good run before and after each works. */
static inline void dt_check_index_errors(smoe_backend *b) {
    smoe_graph *g = NULL;
    assert_int_equal(smoe_graph_init(&g), SMOE_OK);
    smoe_tensor *tab, *ids, *rows, *w, *x, *eids, *mm, *cache, *kr, *cells, *kw;
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 2, DT_NE(8, 5), &tab), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 1, DT_NE(3), &ids), SMOE_OK);
    assert_int_equal(smoe_get_rows(g, tab, ids, &rows), SMOE_OK);
    smoe_tensor_set_name(rows, "the_rows");
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_Q8_0, 3, DT_NE(32, 4, 3), &w), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 3, DT_NE(32, 1, 2), &x), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 2, DT_NE(2, 2), &eids), SMOE_OK);
    assert_int_equal(smoe_mul_mat_id(g, w, x, eids, &mm), SMOE_OK);
    smoe_tensor_set_name(mm, "the_experts");
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F16, 3, DT_NE(8, 1, 6), &cache), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_F32, 3, DT_NE(8, 1, 2), &kr), SMOE_OK);
    assert_int_equal(smoe_graph_new_tensor(g, SMOE_TYPE_I32, 1, DT_NE(2), &cells), SMOE_OK);
    assert_int_equal(smoe_kv_write(g, cache, kr, cells, &kw), SMOE_OK);
    smoe_tensor_set_name(kw, "the_cache");
    smoe_graph_set_output(rows);
    smoe_graph_set_output(mm);
    smoe_graph_set_output(kw);

    float ftab[40] = {0}, fx[64] = {0}, fkr[16] = {0};
    uint8_t wq[4 * 3 * 34] = {0}, c16[8 * 6 * 2] = {0};
    int32_t good_ids[3] = {0, 4, 2}, good_e[4] = {0, 2, 1, 0}, good_c[2] = {5, 0};
    int32_t bad_ids[3] = {0, 5, 2}, bad_e[4] = {0, 3, 1, -1}, bad_c[2] = {6, 0};
    struct {
        const int32_t *ids, *e, *c;
        const char *expect;
    } cases[] = {
        {good_ids, good_e, good_c, NULL},         {bad_ids, good_e, good_c, "the_rows"},
        {good_ids, bad_e, good_c, "the_experts"}, {good_ids, good_e, bad_c, "the_cache"},
        {good_ids, good_e, good_c, NULL},
    };
    smoe_backend *bs[1] = {b};
    smoe_sched *s = NULL;
    assert_int_equal(smoe_sched_init(bs, 1, &s), SMOE_OK);
    assert_int_equal(smoe_sched_alloc_graph(s, g), SMOE_OK);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(smoe_tensor_set(tab, ftab, 0, sizeof(ftab)), SMOE_OK);
        assert_int_equal(smoe_tensor_set(x, fx, 0, 2 * 32 * 4), SMOE_OK);
        assert_int_equal(smoe_tensor_set(w, wq, 0, sizeof(wq)), SMOE_OK);
        assert_int_equal(smoe_tensor_set(cache, c16, 0, sizeof(c16)), SMOE_OK);
        assert_int_equal(smoe_tensor_set(kr, fkr, 0, sizeof(fkr)), SMOE_OK);
        assert_int_equal(smoe_tensor_set(ids, cases[i].ids, 0, 12), SMOE_OK);
        assert_int_equal(smoe_tensor_set(eids, cases[i].e, 0, 16), SMOE_OK);
        assert_int_equal(smoe_tensor_set(cells, cases[i].c, 0, 8), SMOE_OK);
        dt_run_expect(s, g, b, i, cases[i].expect);
    }
    smoe_sched_free(s);
    smoe_graph_free(g);
}


#endif
