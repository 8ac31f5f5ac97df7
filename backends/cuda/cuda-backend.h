/*
 * cuda-backend.h - the CUDA backend's entry points (registry entry in core/backend.c under #if SMOE_HAVE_CUDA).
 *
 * Without a driver or a device (cudaGetDeviceCount fails or reports 0) smoe_cuda_device_count() returns 0 and
 * nothing else is called: the library loads and runs on the CPU.
 */
#ifndef SMOE_CUDA_BACKEND_H
#define SMOE_CUDA_BACKEND_H

#include "core/backend.h"

/* CUDA devices usable now; 0 when the runtime finds no driver or device (never fails). */
int         smoe_cuda_device_count(void);
/* A backend on device `device` (props.name "cuda<device>"), with its own stream. SMOE_ERR_DEVICE with the CUDA
 * error name when the device cannot be used. */
smoe_status smoe_cuda_backend_init(int device, smoe_backend **out);
bool        smoe_backend_is_cuda(smoe_backend *b);

/* What the kernels handle (the backend's supports_op without a device: no CUDA call). Anything else runs on the CPU
 * through the scheduler. `cc` is the device's compute capability (major * 100 + minor * 10). */
bool smoe_cuda_supports_node(const smoe_tensor *node, int cc);

#endif /* SMOE_CUDA_BACKEND_H */
