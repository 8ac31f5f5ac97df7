/*
 * devices.h - backend specs: the strings users pick a device with ("cpu", "vulkan", "vulkan:1", "vulkan1"), as in
 * smoe_model_params.backend, $SMOE_BACKEND and the tools' --backend flags. The public device list is in smoe.h.
 */
#ifndef SMOE_DEVICES_H
#define SMOE_DEVICES_H

#include "backend.h"

/* Parses a spec: a registry kind name, optionally followed by a device index ("vulkan1", "vulkan:1"); no index
 * means device 0. SMOE_ERR_INVALID_ARGUMENT for a malformed spec, SMOE_ERR_UNSUPPORTED for a kind that is not
 * compiled in. Does not check that the device exists. */
smoe_status smoe_backend_spec_parse(const char *spec, const smoe_backend_reg **reg, int *device);
/* Parses a spec and creates that backend (device existence checked). */
smoe_status smoe_backend_init_spec(const char *spec, smoe_backend **out);
/* The spec to use when the caller gives none: $SMOE_BACKEND if set and not empty, else "cpu". */
const char *smoe_backend_default_spec(void);

#endif /* SMOE_DEVICES_H */
