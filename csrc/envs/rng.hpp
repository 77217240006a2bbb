// The per-env random stream of the native envs: xoshiro256++ seeded through
// SplitMix64 from (seed, env index), so an env's resets depend on its own
// (seed, index) only, never on how envs are split across threads.
// numpy's Generator.uniform formula on top (low + (high - low) * u).
//
// This header sees no Python.
#pragma once

#include <cstdint>

namespace pgfast {
namespace envs {

inline uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// xoshiro256++ seeded through SplitMix64 from (seed, stream index).
class Rng {
 public:
  Rng() { seed(0, 0); }
  void seed(uint64_t seed, uint64_t index) {
    uint64_t x = seed;
    const uint64_t a = splitmix64(x);
    uint64_t y = index ^ 0xD1B54A32D192ED03ULL;
    const uint64_t b = splitmix64(y);
    uint64_t z = a ^ (b * 0x9E3779B97F4A7C15ULL) ^ (b >> 17);
    for (auto& w : s_) w = splitmix64(z);
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[0] + s_[3], 23) + s_[0];
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  void get(uint64_t* out) const {
    for (int k = 0; k < 4; ++k) out[k] = s_[k];
  }
  void set(const uint64_t* in) {
    for (int k = 0; k < 4; ++k) s_[k] = in[k];
  }
  // Uniform in [0, 1) with 53 random bits.
  double next_double() { return double(next() >> 11) * 0x1.0p-53; }
  // low + (high - low) * u, the formula numpy's Generator.uniform uses.
  double uniform(double low, double high) { return low + (high - low) * next_double(); }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace envs
}  // namespace pgfast
