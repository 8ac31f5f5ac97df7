/* tests/cuda-emu: half precision as the emulated kernels see it (see ../emu.h) */
#pragma once
#include "../emu.h"
