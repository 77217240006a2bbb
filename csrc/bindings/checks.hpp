// Input checks shared by every binding (returns and envs). Every check that
// guards memory safety lives in csrc/bindings/, so nothing Python passes can
// make a kernel read or write out of bounds.
//
// Exception policy, the same for every function of pgfast._C:
//   TypeError   the wrong kind of object or the wrong dtype
//               ("x must be a numpy array", "x must be float32 or float64")
//   ValueError  the right type with a wrong value: shape, layout (C-contiguous,
//               writeable), range, non-finite numbers, unknown names
//   RuntimeError  a call out of order (step before reset, concurrent use)
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "parallel.hpp"

namespace pgfast {
namespace bindings {

namespace py = pybind11;

[[noreturn]] inline void value_error(const std::string& msg) { throw py::value_error(msg); }
[[noreturn]] inline void type_error(const std::string& msg) { throw py::type_error(msg); }

// ---------------------------------------------------------------- dtypes

// The dtypes a kernel reads or writes; anything else (including a
// non-native byte order) is kOther.
enum class DType { kBool, kU8, kI32, kU32, kI64, kU64, kF32, kF64, kOther };

template <class T>
constexpr DType dtype_v = DType::kOther;
template <>
constexpr DType dtype_v<bool> = DType::kBool;
template <>
constexpr DType dtype_v<uint8_t> = DType::kU8;
template <>
constexpr DType dtype_v<int32_t> = DType::kI32;
template <>
constexpr DType dtype_v<uint32_t> = DType::kU32;
template <>
constexpr DType dtype_v<int64_t> = DType::kI64;
template <>
constexpr DType dtype_v<uint64_t> = DType::kU64;
template <>
constexpr DType dtype_v<float> = DType::kF32;
template <>
constexpr DType dtype_v<double> = DType::kF64;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
constexpr char kNativeByteOrder = '>';
#else
constexpr char kNativeByteOrder = '<';
#endif

// From the descriptor's fields (no dtype objects made: this runs every step).
inline DType dtype_of(const py::array& a) {
  const py::dtype d = a.dtype();
  const char order = d.byteorder();
  if (order != '=' && order != '|' && order != kNativeByteOrder) return DType::kOther;
  switch (d.normalized_num()) {
    case py::dtype::num_of<bool>():
      return DType::kBool;
    case py::dtype::num_of<uint8_t>():
      return DType::kU8;
    case py::dtype::num_of<int32_t>():
      return DType::kI32;
    case py::dtype::num_of<uint32_t>():
      return DType::kU32;
    case py::dtype::num_of<int64_t>():
      return DType::kI64;
    case py::dtype::num_of<uint64_t>():
      return DType::kU64;
    case py::dtype::num_of<float>():
      return DType::kF32;
    case py::dtype::num_of<double>():
      return DType::kF64;
    default:
      return DType::kOther;
  }
}

inline std::string dtype_str(const py::array& a) { return std::string(py::str(a.dtype())); }

// float32 or float64, else TypeError.
inline DType float_dtype(const py::array& a, const char* name) {
  const DType k = dtype_of(a);
  if (k != DType::kF32 && k != DType::kF64) {
    type_error(std::string(name) + " must be float32 or float64, got " + dtype_str(a));
  }
  return k;
}

// Exactly T's dtype, else TypeError.
template <class T>
void require_dtype(const py::array& a, const char* name, const char* want) {
  static_assert(dtype_v<T> != DType::kOther, "require_dtype needs a dtype DType names");
  if (dtype_of(a) != dtype_v<T>) {
    type_error(std::string(name) + " must be " + want + ", got " + dtype_str(a));
  }
}

// The dtype of another argument, else TypeError.
inline void require_same_dtype(const py::array& a, const char* name, DType want,
                               const char* ref) {
  if (dtype_of(a) != want) {
    type_error(std::string(name) + " has dtype " + dtype_str(a) + " but " + ref +
               " has another float dtype; they must match");
  }
}

// Flags of a [T, N] kernel: bool/uint8 (both read as uint8) or the data's
// float dtype. Returns kU8 or the data dtype.
inline DType flag_dtype(const py::array& a, const char* name, DType data) {
  const DType k = dtype_of(a);
  if (k == DType::kBool || k == DType::kU8) return DType::kU8;
  if (k == data) return k;
  type_error(std::string(name) + " must be bool, uint8 or the data's float dtype, got " +
             dtype_str(a));
}

// ---------------------------------------------------------------- arrays

// A numpy array (never converted: a copy would hide mistakes and lose writes).
inline py::array as_array(const py::handle& obj, const char* name) {
  if (!py::isinstance<py::array>(obj)) {
    type_error(std::string(name) + " must be a numpy array, got " +
               std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  }
  return py::reinterpret_borrow<py::array>(obj);
}

inline std::string shape_str(const std::vector<py::ssize_t>& shape) {
  std::string s = "(";
  for (size_t k = 0; k < shape.size(); ++k) {
    if (k) s += ", ";
    s += std::to_string(shape[k]);
  }
  return s + (shape.size() == 1 ? ",)" : ")");
}

inline std::string shape_str(const py::array& a) {
  return shape_str(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
}

inline void require_c_contiguous(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style)) value_error(std::string(name) + " must be C-contiguous");
}

inline void require_writeable(const py::array& a, const char* name) {
  if (!a.writeable()) value_error(std::string(name) + " must be writeable");
}

// Exactly this shape, else ValueError.
inline void require_shape(const py::array& a, const char* name,
                          const std::vector<py::ssize_t>& shape) {
  bool ok = a.ndim() == py::ssize_t(shape.size());
  for (size_t k = 0; ok && k < shape.size(); ++k) ok = a.shape(py::ssize_t(k)) == shape[k];
  if (!ok) {
    value_error(std::string(name) + " must have shape " + shape_str(shape) + ", got " +
                shape_str(a));
  }
}

inline void require_same_shape(const py::array& a, const char* an, const py::array& b,
                               const char* bn) {
  bool same = a.ndim() == b.ndim();
  for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == b.shape(i);
  if (!same) {
    value_error(std::string(bn) + " has shape " + shape_str(b) + " but " + an +
                " has shape " + shape_str(a));
  }
}

// An input of a fixed shape: a numpy array, that shape, C-contiguous.
inline py::array checked_in(const py::handle& obj, const char* name,
                            const std::vector<py::ssize_t>& shape) {
  py::array a = as_array(obj, name);
  require_shape(a, name, shape);
  require_c_contiguous(a, name);
  return a;
}

// An output of a fixed shape: as an input, and writeable.
inline py::array checked_out(const py::handle& obj, const char* name,
                             const std::vector<py::ssize_t>& shape) {
  py::array a = checked_in(obj, name, shape);
  require_writeable(a, name);
  return a;
}

// numpy's name of T's dtype, as the messages give it ("float32", "int64", ...).
template <class T>
constexpr const char* dtype_name() {
  constexpr DType k = dtype_v<T>;
  static_assert(k != DType::kOther, "dtype_name needs a dtype DType names");
  return k == DType::kBool  ? "bool"
         : k == DType::kU8  ? "uint8"
         : k == DType::kI32 ? "int32"
         : k == DType::kU32 ? "uint32"
         : k == DType::kI64 ? "int64"
         : k == DType::kU64 ? "uint64"
         : k == DType::kF32 ? "float32"
                            : "float64";
}

// checked_out, and exactly T's dtype (else TypeError).
template <class T>
py::array checked_out_as(const py::handle& obj, const char* name,
                         const std::vector<py::ssize_t>& shape) {
  py::array a = checked_out(obj, name, shape);
  require_dtype<T>(a, name, dtype_name<T>());
  return a;
}

// Time-major [T] or [T, N] with T >= 1. Returns (T, N).
inline std::pair<int64_t, int64_t> time_major_dims(const py::array& a, const char* name) {
  if (a.ndim() != 1 && a.ndim() != 2) {
    value_error(std::string(name) + " must be 1-D [T] or 2-D [T, N], got shape " +
                shape_str(a));
  }
  const int64_t T = a.shape(0);
  const int64_t N = a.ndim() == 2 ? a.shape(1) : 1;
  if (T == 0) value_error(std::string(name) + " has T = 0 steps; need at least one");
  return {T, N};
}

// ---------------------------------------------------------------- numbers

inline double finite(double x, const std::string& name) {
  if (!std::isfinite(x)) value_error(name + " must be finite, got " + std::to_string(x));
  return x;
}

// A discount-like coefficient in [0, 1].
inline double unit_coeff(double x, const char* name) {
  if (!std::isfinite(x) || x < 0.0 || x > 1.0) {
    value_error(std::string(name) + " must be a finite number in [0, 1], got " +
                std::to_string(x));
  }
  return x;
}

inline void require_at_least(int64_t x, int64_t lo, const char* name) {
  if (x < lo) value_error(std::string(name) + " must be >= " + std::to_string(lo) + ", got " +
                          std::to_string(x));
}

// A thread count in [lo, kMaxThreadRequest] (csrc/parallel.hpp); kernels
// and envs use at most max_pool_threads() of them.
inline int thread_request(int64_t x, int64_t lo, const char* name) {
  if (x < lo || x > kMaxThreadRequest) {
    value_error(std::string(name) + " must be in [" + std::to_string(lo) + ", " +
                std::to_string(kMaxThreadRequest) + "], got " + std::to_string(x));
  }
  return int(x);
}

// Index of the first non-finite value of n, or -1.
template <class T>
int64_t first_nonfinite(const T* p, int64_t n) {
  for (int64_t k = 0; k < n; ++k) {
    if (!std::isfinite(p[k])) return k;
  }
  return -1;
}

// ---------------------------------------------------------------- overlap

// The bytes [lo, hi) an array's elements can occupy (any strides).
inline std::pair<uintptr_t, uintptr_t> byte_extent(const py::array& a) {
  uintptr_t lo = reinterpret_cast<uintptr_t>(a.data()), hi = lo;
  if (a.size() == 0) return {lo, lo};
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    const py::ssize_t span = (a.shape(d) - 1) * a.strides(d);
    if (span < 0) lo -= uintptr_t(-span);
    else hi += uintptr_t(span);
  }
  return {lo, hi + uintptr_t(a.itemsize())};
}

inline bool may_overlap(const py::array& a, const py::array& b) {
  const auto x = byte_extent(a), y = byte_extent(b);
  return x.first < x.second && y.first < y.second && x.first < y.second && y.first < x.second;
}

// Arrays a kernel writes must not share memory with each other or with what
// it reads (a write through one would change another mid-call): ValueError
// naming the first overlapping pair.
using Named = std::pair<const py::array*, const char*>;
inline void require_disjoint(std::initializer_list<Named> outputs,
                             std::initializer_list<Named> inputs = {}) {
  for (auto o = outputs.begin(); o != outputs.end(); ++o) {
    for (auto p = std::next(o); p != outputs.end(); ++p) {
      if (may_overlap(*o->first, *p->first)) {
        value_error(std::string(o->second) + " and " + p->second +
                    " share memory; outputs must be separate arrays");
      }
    }
    for (const Named& i : inputs) {
      if (may_overlap(*o->first, *i.first)) {
        value_error(std::string(o->second) + " shares memory with " + i.second +
                    "; outputs must not overlap inputs");
      }
    }
  }
}

// ---------------------------------------------------------------- pointers

template <class T>
const T* cptr(const py::array& a) {
  return static_cast<const T*>(a.data());
}
template <class T>
T* mptr(py::array& a) {
  return static_cast<T*>(a.mutable_data());
}

}  // namespace bindings
}  // namespace pgfast
