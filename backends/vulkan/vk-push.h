/*
 * vk-push.h - push-constant blocks of the shaders, mirrored field for field (shaders/<kernel>.comp, "Push").
 * Every field is a 32-bit uint or float, so the GLSL block layout is the C layout; the sizes are asserted here and
 * every block fits the 128 bytes Vulkan guarantees. Offsets ending in _off are relative to the start of the
 * tensor's binding: in elements for f32/i32 bindings, in bytes for raw (typed) bindings; strides likewise.
 * The tiled products (mul_mm.comp) take the matrix-vector blocks (smoe_vk_push_mul_mv, smoe_vk_push_mul_mv_id).
 */
#ifndef SMOE_VK_PUSH_H
#define SMOE_VK_PUSH_H

#include <stdint.h>

typedef struct smoe_vk_push_get_rows {
    uint32_t a_off, a_nb1, ne0, n_rows, row_lo, row_hi;
    uint32_t ids_off, n_ids, out_off, out_nb1, err_code;
} smoe_vk_push_get_rows;
_Static_assert(sizeof(smoe_vk_push_get_rows) == 11 * 4, "get_rows.comp");

typedef struct smoe_vk_push_mul_mv {
    uint32_t w_off, w_nb1, k, m_rows, row_lo;
    uint32_t x_off, x_nb1, x_nb2, x_nb3, x_ne1, x_ne2, n_cols;
    uint32_t out_off, out_nb1;
    uint32_t x4; /* 1: x's offset and strides are multiples of 4 elements (vector loads) */
} smoe_vk_push_mul_mv;
_Static_assert(sizeof(smoe_vk_push_mul_mv) == 15 * 4, "mul_mv.comp, mul_mm.comp");

typedef struct smoe_vk_push_mul_mv_id {
    uint32_t w_off, w_nb1, w_nb2, k, m_rows, row_lo, e_lo, e_hi;
    uint32_t x_off, x_nb1, x_nb2, n_x;
    uint32_t n_used;
    uint32_t out_off, out_nb1, out_nb2;
    uint32_t sort_off, max_chunks;
    uint32_t x4;
} smoe_vk_push_mul_mv_id;
_Static_assert(sizeof(smoe_vk_push_mul_mv_id) == 19 * 4, "mul_mv.comp, mul_mm.comp (ID)");

typedef struct smoe_vk_push_quantize_q8 {
    uint32_t x_off, x_nb1, x_nb2, x_nb3, x_ne1, x_ne2, k, q_off;
} smoe_vk_push_quantize_q8;
_Static_assert(sizeof(smoe_vk_push_quantize_q8) == 8 * 4, "quantize_q8.comp");

typedef struct smoe_vk_push_mul_mvq {
    uint32_t w_off, w_nb1, k, m_rows, row_lo;
    uint32_t q_off, n_cols;
    uint32_t out_off, out_nb1;
} smoe_vk_push_mul_mvq;
_Static_assert(sizeof(smoe_vk_push_mul_mvq) == 9 * 4, "mul_mvq.comp");

typedef struct smoe_vk_push_mul_mvq_id {
    uint32_t w_off, w_nb1, w_nb2, k, m_rows, row_lo, e_lo, e_hi;
    uint32_t q_off, n_x, n_used;
    uint32_t out_off, out_nb1, out_nb2;
    uint32_t sort_off, max_chunks;
} smoe_vk_push_mul_mvq_id;
_Static_assert(sizeof(smoe_vk_push_mul_mvq_id) == 16 * 4, "mul_mvq.comp (ID)");

typedef struct smoe_vk_push_moe_sort {
    uint32_t ids_off, ids_nb1, n_used, n_tokens, n_expert, nc, sort_off, max_chunks, err_code;
} smoe_vk_push_moe_sort;
_Static_assert(sizeof(smoe_vk_push_moe_sort) == 9 * 4, "moe_sort.comp");

typedef struct smoe_vk_push_rms_norm {
    uint32_t ne0, ne1, ne2, n_rows;
    uint32_t x_off, x_nb1, x_nb2, x_nb3;
    uint32_t w_off;
    uint32_t o_off, o_nb1, o_nb2, o_nb3;
    float    eps;
} smoe_vk_push_rms_norm;
_Static_assert(sizeof(smoe_vk_push_rms_norm) == 14 * 4, "rms_norm.comp");

typedef struct smoe_vk_push_rope {
    uint32_t head_dim, n_head, n_tokens, n_rot;
    uint32_t x_off, x_nb1, x_nb2;
    uint32_t pos_off;
    uint32_t o_off, o_nb1, o_nb2;
    float    freq_scale, log2_theta;
    uint32_t base_lo, base_hi;
} smoe_vk_push_rope;
_Static_assert(sizeof(smoe_vk_push_rope) == 15 * 4, "rope.comp");

typedef struct smoe_vk_push_cpy {
    uint32_t ne0, ne1, ne2, ne3;
    uint32_t s_off, s_nb1, s_nb2, s_nb3;
    uint32_t d_off, d_nb1, d_nb2, d_nb3;
    uint32_t idx_off, scatter, n_cells, err_code;
} smoe_vk_push_cpy;
_Static_assert(sizeof(smoe_vk_push_cpy) == 16 * 4, "cpy.comp");

typedef struct smoe_vk_push_attention {
    uint32_t q_off, q_nb1, q_nb2;
    uint32_t k_off, k_nb1, k_nb2;
    uint32_t v_off, v_nb1, v_nb2;
    uint32_t qi_off, qi_nb1, ci_off, ci_nb1, ns_off;
    uint32_t o_off, o_nb1, o_nb2;
    uint32_t head_dim, n_head, n_head_kv, n_cells;
    float    scale;
    uint32_t n_chunks, chunk;
} smoe_vk_push_attention;
_Static_assert(sizeof(smoe_vk_push_attention) == 24 * 4, "attention.comp");

typedef struct smoe_vk_push_attention_combine {
    uint32_t p_off;
    uint32_t o_off, o_nb1, o_nb2;
    uint32_t head_dim, n_head, n_chunks;
} smoe_vk_push_attention_combine;
_Static_assert(sizeof(smoe_vk_push_attention_combine) == 7 * 4, "attention_combine.comp");

typedef struct smoe_vk_push_moe_route {
    uint32_t l_off, l_nb1, o_off, o_nb1, n_expert, n_used, n_tokens;
} smoe_vk_push_moe_route;
_Static_assert(sizeof(smoe_vk_push_moe_route) == 7 * 4, "moe_route.comp");

typedef struct smoe_vk_push_moe_combine {
    uint32_t y_off, y_nb1, y_nb2;
    uint32_t l_off, l_nb1;
    uint32_t i_off, i_nb1;
    uint32_t o_off, o_nb1;
    uint32_t n_embd, n_used, n_expert, err_code;
} smoe_vk_push_moe_combine;
_Static_assert(sizeof(smoe_vk_push_moe_combine) == 13 * 4, "moe_combine.comp");

enum { SMOE_VK_ELT_ADD = 0, SMOE_VK_ELT_MUL = 1, SMOE_VK_ELT_SCALE = 2, SMOE_VK_ELT_SWIGLU = 3 };

typedef struct smoe_vk_push_eltwise {
    uint32_t ne0, ne1, ne2, ne3;
    uint32_t a_off, a_nb1, a_nb2, a_nb3;
    uint32_t b_off, b_nb1, b_nb2, b_nb3;
    uint32_t b_ne0, b_ne1, b_ne2, b_ne3;
    uint32_t o_off, o_nb1, o_nb2, o_nb3;
    uint32_t op;
    float    s;
} smoe_vk_push_eltwise;
_Static_assert(sizeof(smoe_vk_push_eltwise) == 22 * 4, "eltwise.comp");

#endif /* SMOE_VK_PUSH_H */
