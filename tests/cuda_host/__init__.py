"""Test helpers: CUDA C++ of cpp/cuda executed on the CPU through cpp/testing (never in the wheel)."""
