/* tests/cuda-emu: the emulated launchers take the emu_ prefix (emu-launch.c queues the real names' launches on the
 * fake runtime's streams and calls these when a stream runs them); included first by every emulated source */
#pragma once
#define smoe_cuda_get_rows emu_smoe_cuda_get_rows
#define smoe_cuda_mul_mat emu_smoe_cuda_mul_mat
#define smoe_cuda_mul_mat_id emu_smoe_cuda_mul_mat_id
#define smoe_cuda_mmq emu_smoe_cuda_mmq
#define smoe_cuda_mmq_id emu_smoe_cuda_mmq_id
#define smoe_cuda_cpy emu_smoe_cuda_cpy
#define smoe_cuda_rms_norm emu_smoe_cuda_rms_norm
#define smoe_cuda_rope emu_smoe_cuda_rope
#define smoe_cuda_binary emu_smoe_cuda_binary
#define smoe_cuda_scale emu_smoe_cuda_scale
#define smoe_cuda_moe_route emu_smoe_cuda_moe_route
#define smoe_cuda_moe_combine emu_smoe_cuda_moe_combine
#define smoe_cuda_kv_write emu_smoe_cuda_kv_write
#define smoe_cuda_attention emu_smoe_cuda_attention
