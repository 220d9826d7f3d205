// Each kernel family's binding file registers a function that adds its names to the module.
// The module then calls them all, so families never edit a shared file to be exposed.
#pragma once
#include <pybind11/pybind11.h>

#include <utility>
#include <vector>

namespace spk::bindings {

using BindFn = void (*)(pybind11::module_&);

inline std::vector<std::pair<const char*, BindFn>>& registry() {
  static std::vector<std::pair<const char*, BindFn>> fns;  // function-local: safe static init order
  return fns;
}

struct Registrar {
  Registrar(const char* name, BindFn fn) { registry().emplace_back(name, fn); }
};

}  // namespace spk::bindings

#define SPK_CONCAT_INNER(a, b) a##b
#define SPK_CONCAT(a, b) SPK_CONCAT_INNER(a, b)
// Usage at namespace scope: SPK_REGISTER_BINDINGS(distance) { m.def(...); }
#define SPK_REGISTER_BINDINGS(name)                                                        \
  static void SPK_CONCAT(spk_bind_, name)(pybind11::module_ & m);                          \
  static ::spk::bindings::Registrar SPK_CONCAT(spk_registrar_, name)(#name,                \
                                                                     &SPK_CONCAT(spk_bind_, name)); \
  static void SPK_CONCAT(spk_bind_, name)(pybind11::module_ & m)
