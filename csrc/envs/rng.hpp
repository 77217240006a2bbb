// The per-env random stream of the native envs: an exact port of what
// gymnasium's `np_random(seed)` builds, numpy's
//   np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
// and of the one draw the envs use, Generator.uniform(low, high)
// (low + (high - low) * next_double). Env i of a vector env seeded with s is
// seeded from the integer s + i (gymnasium's SyncVectorEnv), so a native env
// draws exactly the numbers gymnasium's env i draws.
//
// numpy sources mirrored:
//   numpy/random/bit_generator.pyx   SeedSequence (pool of 4 uint32 words,
//                                    mix_entropy, generate_state)
//   numpy/random/src/pcg64/pcg64.h   PCG64 (128-bit LCG, XSL-RR output)
//   numpy/random/src/distributions   next_double = (next64 >> 11) * 2^-53
//
// This header sees no Python.
#pragma once

#include <cstdint>

namespace pgfast {
namespace envs {

// numpy's SeedSequence with the default pool size 4 and no spawn key.
// `entropy` holds the seed integer as little-endian uint32 words (numpy's
// _int_to_uint32_array: 0 is one word 0; up to 4 words, trailing zero words
// do not change the result; beyond 4 words, every word counts).
class SeedSequence {
 public:
  static constexpr uint32_t kInitA = 0x43b0d7e5u;
  static constexpr uint32_t kMultA = 0x931e8875u;
  static constexpr uint32_t kInitB = 0x8b51f9ddu;
  static constexpr uint32_t kMultB = 0x58f38dedu;
  static constexpr uint32_t kMixMultL = 0xca01f9ddu;
  static constexpr uint32_t kMixMultR = 0x4973f715u;
  static constexpr int kXShift = 16;
  static constexpr int kPoolSize = 4;

  SeedSequence(const uint32_t* entropy, int64_t n) {
    uint32_t hash_const = kInitA;
    for (int i = 0; i < kPoolSize; ++i) {
      pool_[i] = hashmix(i < n ? entropy[i] : 0u, hash_const);
    }
    for (int src = 0; src < kPoolSize; ++src) {
      for (int dst = 0; dst < kPoolSize; ++dst) {
        if (src != dst) pool_[dst] = mix(pool_[dst], hashmix(pool_[src], hash_const));
      }
    }
    for (int64_t src = kPoolSize; src < n; ++src) {
      for (int dst = 0; dst < kPoolSize; ++dst) {
        pool_[dst] = mix(pool_[dst], hashmix(entropy[src], hash_const));
      }
    }
  }

  // generate_state(n64, np.uint64): 2 * n64 uint32 words, paired little-endian.
  void generate_state(uint64_t* out, int n64) const {
    uint32_t hash_const = kInitB;
    for (int k = 0; k < 2 * n64; ++k) {
      uint32_t v = pool_[k % kPoolSize];
      v ^= hash_const;
      hash_const *= kMultB;
      v *= hash_const;
      v ^= v >> kXShift;
      if (k % 2 == 0) {
        out[k / 2] = v;
      } else {
        out[k / 2] |= uint64_t(v) << 32;
      }
    }
  }

 private:
  static uint32_t hashmix(uint32_t value, uint32_t& hash_const) {
    value ^= hash_const;
    hash_const *= kMultA;
    value *= hash_const;
    value ^= value >> kXShift;
    return value;
  }
  static uint32_t mix(uint32_t x, uint32_t y) {
    uint32_t r = kMixMultL * x - kMixMultR * y;
    r ^= r >> kXShift;
    return r;
  }
  uint32_t pool_[kPoolSize];
};

// numpy's PCG64 (pcg_setseq_128_xsl_rr_64) and Generator.uniform.
class Rng {
 public:
  using u128 = unsigned __int128;

  Rng() {
    const uint32_t zero = 0;
    seed(&zero, 1);
  }
  // PCG64(SeedSequence(entropy)).
  void seed(const uint32_t* entropy, int64_t n) {
    uint64_t v[4];
    SeedSequence(entropy, n).generate_state(v, 4);
    const u128 initstate = (u128(v[0]) << 64) | v[1];
    const u128 initseq = (u128(v[2]) << 64) | v[3];
    state_ = 0;
    inc_ = (initseq << 1u) | 1u;
    step();
    state_ += initstate;
    step();
  }
  uint64_t next() {
    step();
    const uint64_t hi = uint64_t(state_ >> 64), lo = uint64_t(state_);
    const unsigned rot = unsigned(state_ >> 122u);
    const uint64_t x = hi ^ lo;
    return (x >> rot) | (x << ((64u - rot) & 63u));
  }
  // numpy's bit_generator.state: {"state": state, "inc": inc} as
  // (state_hi, state_lo, inc_hi, inc_lo).
  void get(uint64_t* out) const {
    out[0] = uint64_t(state_ >> 64);
    out[1] = uint64_t(state_);
    out[2] = uint64_t(inc_ >> 64);
    out[3] = uint64_t(inc_);
  }
  void set(const uint64_t* in) {
    state_ = (u128(in[0]) << 64) | in[1];
    inc_ = (u128(in[2]) << 64) | in[3];
  }
  // Uniform in [0, 1) with 53 random bits (numpy's next_double).
  double next_double() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
  // numpy's Generator.uniform: low + (high - low) * next_double.
  double uniform(double low, double high) { return low + (high - low) * next_double(); }

 private:
  static constexpr u128 kMult =
      (u128(0x2360ED051FC65DA4ULL) << 64) | u128(0x4385DF649FCCF645ULL);
  void step() { state_ = state_ * kMult + inc_; }
  u128 state_, inc_;
};

}  // namespace envs
}  // namespace pgfast
