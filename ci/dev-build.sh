#!/usr/bin/env bash
# Fast edit-compile-test loop without reinstalling: builds spkernels._core into
# build/dev-<tag> and drops the module next to the Python sources, so that
#   PYTHONPATH=python python -m pytest
# tests the working tree. Pass SPK_CUDA=OFF to skip nvcc; extra args go to cmake configure.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${SPK_DEV_TAG:-$(python3 -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')}
bdir=build/dev-$tag
pybind11_dir=$(python3 -c 'import pybind11; print(pybind11.get_cmake_dir())')
cmake -S . -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release -Dpybind11_DIR="$pybind11_dir" \
  -DPython_EXECUTABLE="$(command -v python3)" -DSPK_CUDA="${SPK_CUDA:-AUTO}" \
  -DSKBUILD_PROJECT_VERSION=0.1.0.dev "$@" >/dev/null
cmake --build "$bdir" -j "${SPK_BUILD_JOBS:-2}"
# Copy then rename: overwriting a loaded .so in place crashes processes that have it mapped.
for so in "$bdir"/_core*.so; do
  cp -f "$so" "python/spkernels/.$(basename "$so").tmp" && mv -f "python/spkernels/.$(basename "$so").tmp" "python/spkernels/$(basename "$so")"
done
echo "built $(ls python/spkernels/_core*.so)"
