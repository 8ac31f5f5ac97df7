/*
 * vk-backend.h - the Vulkan backend as the rest of the library sees it (no Vulkan headers needed): the registry
 * entry points (core/backend.c) and a few queries for tests and tools. Only compiled when SMOE_HAVE_VULKAN.
 */
#ifndef SMOE_VK_BACKEND_H
#define SMOE_VK_BACKEND_H

#include "core/backend.h"

/* Devices usable by smoe (Vulkan >= 1.2 with a compute queue), best first (discrete, integrated, virtual, CPU);
 * 0 when there is no loader or no device. */
int smoe_vk_device_count(void);
/* "vulkan0" and "NVIDIA GeForce RTX 4090 (discrete GPU, Vulkan 1.3.277)"; memory_total: largest device-local heap.
 * Any output may be NULL. */
smoe_status smoe_vk_device_describe(int device, char *name, size_t name_size, char *desc, size_t desc_size,
                                    uint64_t *memory_total);
/* A backend on device `device` (index in the list above). SMOE_ERR_INVALID_ARGUMENT for a missing device,
 * SMOE_ERR_UNSUPPORTED without a Vulkan 1.2 loader, SMOE_ERR_DEVICE / SMOE_ERR_OUT_OF_MEMORY with the VkResult. */
smoe_status smoe_vk_backend_init(int device, smoe_backend **out);
bool        smoe_backend_is_vulkan(smoe_backend *b);
/* Validation-layer warnings and errors received so far (only with SMOE_VK_VALIDATION=1); *first (optional) gets
 * the first message. */
int         smoe_vk_backend_validation_messages(smoe_backend *b, const char **first);
/* The largest binding the backend uses (maxStorageBufferRange or SMOE_VK_MAX_BINDING) and the largest buffer it
 * can allocate, in bytes. */
uint64_t    smoe_vk_backend_max_binding(smoe_backend *b);
uint64_t    smoe_vk_backend_max_buffer(smoe_backend *b);
/* Activation columns (MUL_MAT_ID: pairs per expert on average) from which matrix products run tiled in f32
 * (mul_mm.comp) instead of matrix-vector style (SMOE_VK_MM_COLS; UINT32_MAX: never). */
uint32_t    smoe_vk_backend_mm_cols(smoe_backend *b);
/* Computes whose command buffer was recorded / submitted again from the cache (an identical earlier one), and the
 * dispatches and barriers of the last recorded one. Any output may be NULL. */
void        smoe_vk_backend_counters(smoe_backend *b, uint64_t *recorded, uint64_t *replayed, uint32_t *dispatches,
                                     uint32_t *barriers);
/* "f16 subgroup f64 push dot" subset in use (after SMOE_VK_DISABLE), for test output. Static storage per backend. */
const char *smoe_vk_backend_features(smoe_backend *b);

#endif /* SMOE_VK_BACKEND_H */
