/*
 * types.glsl - included first by every shader: extensions, the workgroup size (specialization constant 0), the
 * status word, type ids and exact fp16/bf16 conversions.
 *
 * Variant defines (set per SPIR-V target in meson.build, never assumed by the host):
 *   S16 = 1  the device has storageBuffer16BitAccess: raw tensor bytes are read and written as 16-bit words;
 *            otherwise as 32-bit words (partial words are written with atomics).
 *   SG  = 1  the device has subgroup arithmetic in compute shaders: reductions use subgroupAdd/Max;
 *            otherwise a shared-memory tree.
 * Binding 7 of every pipeline is the status buffer: status_word[0] receives the first error code of a submission
 * (an index out of range in a data tensor: the host maps the code back to the node and fails the compute).
 */
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#if S16
#extension GL_EXT_shader_16bit_storage : require
#endif
#if SG
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
#define WG gl_WorkGroupSize.x

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

/* type ids = GGUF's (core/types.h) */
#define TYPE_F32  0
#define TYPE_F16  1
#define TYPE_Q4_0 2
#define TYPE_Q4_1 3
#define TYPE_Q5_0 6
#define TYPE_Q5_1 7
#define TYPE_Q8_0 8
#define TYPE_Q4_K 12
#define TYPE_Q5_K 13
#define TYPE_Q6_K 14
#define TYPE_Q8_K 15
#define TYPE_BF16 30
#define IS_PLAIN(t) ((t) == TYPE_F32 || (t) == TYPE_F16 || (t) == TYPE_BF16)

layout(binding = 7) buffer StatusBuf { uint status_word[]; };

/* Keeps the first error of a submission. */
void report_error(uint code) { atomicCompSwap(status_word[0], 0u, code); }

#define NEG_INF uintBitsToFloat(0xFF800000u)

/* Half bits -> float: exact for every value (subnormals included). */
float f16_to_f32(uint h) { return unpackHalf2x16(h).x; }

/* float -> half bits, round to nearest even, as core/fp16.h (packHalf2x16 leaves the rounding to the driver). */
uint f32_to_f16(float f) {
    const uint x = floatBitsToUint(f);
    const uint sign = (x >> 16) & 0x8000u;
    const uint ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u) return sign | 0x7C00u | (ax > 0x7F800000u ? (0x200u | ((ax >> 13) & 0x3FFu)) : 0u);
    if (ax >= 0x477FF000u) return sign | 0x7C00u;
    if (ax < 0x38800000u) {
        if (ax < 0x33000000u) return sign;
        const uint e = ax >> 23;
        const uint m = (ax & 0x7FFFFFu) | 0x800000u;
        const uint s = 126u - e;
        uint q = m >> s;
        const uint rem = m & ((1u << s) - 1u);
        const uint hf = 1u << (s - 1u);
        if (rem > hf || (rem == hf && (q & 1u) != 0u)) q++;
        return sign | q;
    }
    uint r = ax - 0x38000000u;
    const uint rem = r & 0x1FFFu;
    r >>= 13;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u) != 0u)) r++;
    return sign | r;
}

float bf16_to_f32(uint b) { return uintBitsToFloat(b << 16); }

uint f32_to_bf16(float f) {
    uint u = floatBitsToUint(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return ((u >> 16) | 0x40u) & 0xFFFFu;
    u += 0x7FFFu + ((u >> 16) & 1u);
    return u >> 16;
}

/* The 4 bytes of a word as floats (unsigned / signed). */
vec4 bytes_u(uint q) { return vec4(q & 0xFFu, (q >> 8) & 0xFFu, (q >> 16) & 0xFFu, q >> 24); }
vec4 bytes_s(uint q) {
    const int v = int(q);
    return vec4(bitfieldExtract(v, 0, 8), bitfieldExtract(v, 8, 8), bitfieldExtract(v, 16, 8), bitfieldExtract(v, 24, 8));
}
