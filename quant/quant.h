/*
 * quant.h - block formats bit-compatible with GGUF, and their reference (plain C) conversions.
 * Each block struct carries a _Static_assert of its GGUF size.
 */
#ifndef SMOE_QUANT_H
#define SMOE_QUANT_H

#include "../core/fp16.h"
#include "../core/types.h"

#endif /* SMOE_QUANT_H */
