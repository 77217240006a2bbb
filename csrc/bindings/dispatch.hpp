// One dtype dispatch for every binding: calls a generic lambda with a tag of
// the C++ type that matches a runtime DType.
//
//   dispatch<float, double>(float_dtype(x, "x"), [&](auto t) {
//     using T = typename decltype(t)::type;
//     kernel(cptr<T>(x), ...);
//   });
//
// The candidates are the types the checks already admitted, so a DType that
// matches none of them is a bug in the caller (std::logic_error).
#pragma once

#include <stdexcept>

#include "bindings/checks.hpp"

namespace pgfast {
namespace bindings {

template <class T>
struct Tag {
  using type = T;
};

template <class... Ts, class F>
void dispatch(DType d, F&& f) {
  const bool matched = ((d == dtype_v<Ts> ? (f(Tag<Ts>{}), true) : false) || ...);
  if (!matched) throw std::logic_error("pgfast: dtype dispatch reached an unchecked dtype");
}

}  // namespace bindings
}  // namespace pgfast
