// Host-execution stand-in for <cuda_runtime.h> (tests only): see spk_host/runtime.h.
#pragma once
#include "spk_host/runtime.h"
