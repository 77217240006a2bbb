// Arithmetic exactly as numpy evaluates it, for envs that must match
// gymnasium bit for bit: `x ** 2` on numpy scalars (libm pow, not always
// x * x) and np.remainder (libm fmod, sign of the divisor), with fast paths
// that give the same results.
//
// This header sees no Python.
#pragma once

#include <cmath>

namespace pgfast {
namespace envs {

// numpy evaluates `x ** 2` on float64 / float32 scalars with libm pow / powf,
// which is not always the correctly rounded x * x (glibc's pow is accurate to
// 0.52 ulp, so it can round the other way when x * x lies within 0.02 ulp of
// a rounding midpoint). np_pow2 / np_powf2 return exactly what libm returns:
// they compute x * x and its exact rounding error (Dekker's product, exact
// IEEE arithmetic without FMA), return x * x when the exact square is at
// least 0.025 ulp away from a rounding midpoint (then any libm result within
// 0.52 ulp of it must equal x * x), and otherwise call libm. The exponent is
// hidden from the compiler, which would fold pow(x, 2.0) into x * x.
inline double np_pow(double x, double y) {
  asm("" : "+x"(y));
  return std::pow(x, y);
}
inline float np_powf(float x, float y) {
  asm("" : "+x"(y));
  return std::pow(x, y);
}

// x * x is safe to return when its rounding error err satisfies
// |err| <= 0.475 ulp, i.e. when p + err / 0.95 still rounds to p: a test in
// plain arithmetic (vectorisable, and right at binade edges too).
constexpr double kPow2Slack = 1.0 / 0.95;
// For float32 the margin is 0.49 ulp (glibc's powf(x, 2) misrounds only within
// 0.002 ulp of a midpoint: checked exhaustively for |x| in [2^-40, 2^10]).
constexpr double kPowf2Slack = 0.5 / 0.49;

// x * x and whether it certainly equals libm's pow(x, 2.0).
inline double pow2_fast(double x, bool* ok) {
  const double ax = std::fabs(x);
  const double p = x * x;
  const double t = 134217729.0 * x;  // 2^27 + 1: Dekker split
  const double hi = t - (t - x);
  const double lo = x - hi;
  const double err = ((hi * hi - p) + 2.0 * hi * lo) + lo * lo;  // exact: x*x = p + err
  *ok = (ax > 0x1p-480) & (ax < 0x1p480) & (p + kPow2Slack * err == p);
  return p;
}
// x * x rounded to float and whether it certainly equals libm's powf(x, 2.0f).
inline float powf2_fast(float x, bool* ok) {
  const float ax = std::fabs(x);
  const double d = double(x) * double(x);  // exact
  const float c = float(d);
  const double err = d - double(c);  // exact
  *ok = (ax > 0x1p-60f) & (ax < 0x1p60f) & (float(double(c) + kPowf2Slack * err) == c);
  return c;
}

inline double np_pow2(double x) {
  bool ok;
  const double p = pow2_fast(x, &ok);
  return ok ? p : np_pow(x, 2.0);
}

inline float np_powf2(float x) {
  bool ok;
  const float c = powf2_fast(x, &ok);
  return ok ? c : np_powf(x, 2.0f);
}

// fmod(a, b) for b > 0, exactly as libm's (fmod is always exact): for
// |a| < 2^26 b the quotient q = trunc(|a| / b) is right or off by one; with
// q * b = P + E split exactly (Dekker), |a| - P is exact (Sterbenz) and so is
// (|a| - P) - E when q is right, which the sign/size of the result tells.
inline double exact_fmod(double a, double b) {
  const double x = std::fabs(a);
  if (!(x < b * 0x1p26) || !(b > 0)) return std::fmod(a, b);
  if (x < b) return a;
  double q = std::trunc(x / b);
  for (int attempt = 0; attempt < 3; ++attempt) {
    const double P = q * b;
    const double t = 134217729.0 * q, qh = t - (t - q), ql = q - qh;
    const double u = 134217729.0 * b, bh = u - (u - b), bl = b - bh;
    const double E = ((qh * bh - P) + qh * bl + ql * bh) + ql * bl;  // q*b = P + E
    const double r = (x - P) - E;
    if (r < 0) {
      q -= 1;
    } else if (r >= b) {
      q += 1;
    } else {
      return std::copysign(r, a);
    }
  }
  return std::fmod(a, b);
}

// numpy's float remainder (np.remainder / `%` on float64): the sign follows b.
inline double np_remainder(double a, double b) {
  double mod = exact_fmod(a, b);
  if (mod != 0.0) {
    if ((b < 0) != (mod < 0)) mod += b;
  } else {
    mod = std::copysign(0.0, b);
  }
  return mod;
}

}  // namespace envs
}  // namespace pgfast
