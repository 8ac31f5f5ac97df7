/* tests/cuda-emu: the CUDA runtime header as the emulated kernels see it (see ../emu.h) */
#pragma once
#include "../emu.h"
