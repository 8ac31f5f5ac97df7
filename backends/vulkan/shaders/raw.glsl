/*
 * raw.glsl - byte-addressed access to one storage binding holding tensor bytes of any type.
 * Include after defining RAW_BINDING (binding number) and RAW (a name prefix); undefines both. Defines:
 *   uint  RAW_u16(uint o)  16 bits at byte offset o (o even)
 *   uint  RAW_u32(uint o)  32 bits at o (o even; 4-aligned offsets take one 32-bit load)
 *   uint  RAW_u8(uint o)   one byte
 *   float RAW_f32(uint o)  o a multiple of 4
 *   uvec2 RAW_u32x2(uint o), uvec4 RAW_u32x4(uint o)  8 / 16 bytes at o (o even; one vector load when aligned)
 * With RAW_WRITE also:
 *   void RAW_st16(uint o, uint v)  stores the low 16 bits of v at o (o even)
 *   void RAW_st32(uint o, uint v)  o a multiple of 4
 * Reading 32 bits at o = 2 mod 4 without 16-bit storage reads the whole next word, so allocations are rounded up
 * to a multiple of 4 bytes and bindings extend past the tensor's last byte (see vk-ops.c, bind_range).
 */
#ifdef RAW_WRITE
#define RAW_QUAL
#else
#define RAW_QUAL readonly
#endif

layout(binding = RAW_BINDING) RAW_QUAL buffer CAT(RAW, _Blk32) { uint CAT(RAW, _w32)[]; };
layout(binding = RAW_BINDING) RAW_QUAL buffer CAT(RAW, _Blk64) { uvec2 CAT(RAW, _w64)[]; };
layout(binding = RAW_BINDING) RAW_QUAL buffer CAT(RAW, _Blk128) { uvec4 CAT(RAW, _w128)[]; };
#if S16
layout(binding = RAW_BINDING) RAW_QUAL buffer CAT(RAW, _Blk16) { uint16_t CAT(RAW, _w16)[]; };

uint CAT(RAW, _u16)(uint o) { return uint(CAT(RAW, _w16)[o >> 1]); }
uint CAT(RAW, _u32)(uint o) {
    if ((o & 2u) == 0u) return CAT(RAW, _w32)[o >> 2];
    return uint(CAT(RAW, _w16)[o >> 1]) | (uint(CAT(RAW, _w16)[(o >> 1) + 1u]) << 16);
}
#else
uint CAT(RAW, _u16)(uint o) { return (CAT(RAW, _w32)[o >> 2] >> ((o & 2u) << 3)) & 0xFFFFu; }
uint CAT(RAW, _u32)(uint o) {
    const uint w = o >> 2;
    if ((o & 2u) == 0u) return CAT(RAW, _w32)[w];
    return (CAT(RAW, _w32)[w] >> 16) | (CAT(RAW, _w32)[w + 1u] << 16);
}
#endif
uint CAT(RAW, _u8)(uint o) { return (CAT(RAW, _u16)(o & ~1u) >> ((o & 1u) << 3)) & 0xFFu; }
/* 8 and 16 bytes at once where o allows one vector load (o even) */
uvec2 CAT(RAW, _u32x2)(uint o) {
    if ((o & 7u) == 0u) return CAT(RAW, _w64)[o >> 3];
    return uvec2(CAT(RAW, _u32)(o), CAT(RAW, _u32)(o + 4u));
}
uvec4 CAT(RAW, _u32x4)(uint o) {
    if ((o & 15u) == 0u) return CAT(RAW, _w128)[o >> 4];
    return uvec4(CAT(RAW, _u32x2)(o), CAT(RAW, _u32x2)(o + 8u));
}
float CAT(RAW, _f32)(uint o) { return uintBitsToFloat(CAT(RAW, _w32)[o >> 2]); }

#ifdef RAW_WRITE
void CAT(RAW, _st32)(uint o, uint v) { CAT(RAW, _w32)[o >> 2] = v; }
#if S16
void CAT(RAW, _st16)(uint o, uint v) { CAT(RAW, _w16)[o >> 1] = uint16_t(v & 0xFFFFu); }
#else
/* Other invocations may write the other half of the word at the same time: clear and set only our half. */
void CAT(RAW, _st16)(uint o, uint v) {
    const uint sh = (o & 2u) << 3;
    atomicAnd(CAT(RAW, _w32)[o >> 2], ~(0xFFFFu << sh));
    atomicOr(CAT(RAW, _w32)[o >> 2], (v & 0xFFFFu) << sh);
}
#endif
#endif

#undef RAW_QUAL
#undef RAW_BINDING
#undef RAW
