// See adam.hpp.
#include "adam.hpp"

#include <algorithm>
#include <cmath>

#include "clones.hpp"
#include "dense.hpp"

namespace pgfast {
namespace adam {
namespace {

// One Adam step of n parameters (torch's fused kernel, grad divided by scale).
PGFAST_CLONES
void adam_step(float* __restrict p, const float* __restrict g, float* __restrict m,
               float* __restrict v, int64_t n, float inv_scale, float beta1, float beta2,
               float step_size, float inv_bc2_sqrt, float eps) {
  const float one_b1 = 1.0f - beta1, one_b2 = 1.0f - beta2;
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] * inv_scale;
    m[i] += one_b1 * (gi - m[i]);
    v[i] = v[i] * beta2 + one_b2 * gi * gi;
    const float denom = std::sqrt(v[i]) * inv_bc2_sqrt + eps;
    p[i] -= step_size * m[i] / denom;
  }
}

PGFAST_CLONES
double sum_squares_impl(const float* __restrict g, int64_t n) {
  constexpr int kLanes = 16;  // explicit lanes: the loop vectorises without reassociation
  float lane[kLanes] = {};
  const int64_t nb = n - n % kLanes;
  for (int64_t i = 0; i < nb; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) lane[l] += g[i + l] * g[i + l];
  }
  double s = 0.0;
  for (int l = 0; l < kLanes; ++l) s += lane[l];
  for (int64_t i = nb; i < n; ++i) s += double(g[i]) * g[i];
  return s;
}

// lane[l] += g[i + l]^2 over n floats (n a multiple of kLanes), as sum_squares_impl's loop.
PGFAST_CLONES
void add_lanes(float* __restrict lane, const float* __restrict g, int64_t n) {
  constexpr int kLanes = 16;
  float acc[kLanes];
  for (int l = 0; l < kLanes; ++l) acc[l] = lane[l];
  for (int64_t i = 0; i < n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] += g[i + l] * g[i + l];
  }
  for (int l = 0; l < kLanes; ++l) lane[l] = acc[l];
}

}  // namespace

double sum_squares(const float* g, int64_t n) { return sum_squares_impl(g, n); }

double sum_squares_parts(const Part* parts, int count, int64_t len) {
  constexpr int64_t kLanes = 16;
  float lane[kLanes] = {};
  const int64_t nb = len - len % kLanes;
  for (int c = 0; c < count; ++c) {
    const Part& p = parts[c];
    int64_t j = 0;
    if (p.stride == 1) {  // to a lane boundary, then whole blocks of lanes vectorised
      for (; j < p.n && (p.off + j) % kLanes != 0 && p.off + j < nb; ++j) {
        lane[(p.off + j) % kLanes] += p.g[j] * p.g[j];
      }
      const int64_t blocks = std::max<int64_t>(0, std::min(p.n - j, nb - (p.off + j))) / kLanes;
      add_lanes(lane, p.g + j, blocks * kLanes);
      j += blocks * kLanes;
    }
    for (; j < p.n && p.off + j * p.stride < nb; ++j) {
      lane[(p.off + j * p.stride) % kLanes] += p.g[j] * p.g[j];
    }
  }
  double s = 0.0;
  for (int l = 0; l < kLanes; ++l) s += lane[l];
  for (int c = 0; c < count; ++c) {  // the tail, in increasing positions
    const Part& p = parts[c];
    for (int64_t j = p.off >= nb ? 0 : (nb - p.off + p.stride - 1) / p.stride; j < p.n; ++j) {
      s += double(p.g[j]) * p.g[j];
    }
  }
  return s;
}

void step(const Tensors& t, Hyper& h, float max_grad_norm) {
  double total = 0.0;
  if (max_grad_norm > 0.0f) {
    for (int q = 0; q < t.count; ++q) total += sum_squares_impl(t.g[q], t.size[q]);
  }
  step_with_norm(t, h, max_grad_norm, total);
}

void step_with_norm(const Tensors& t, Hyper& h, float max_grad_norm, double grad_sq) {
  float inv_scale = 1.0f;
  if (max_grad_norm > 0.0f) {
    const float norm = float(std::sqrt(grad_sq));
    const float scale = std::max(1.0f, (norm + 1e-6f) / max_grad_norm);
    inv_scale = 1.0f / scale;
  }
  h.step += 1;
  const double bc1 = 1.0 - std::pow(h.beta1, double(h.step));
  const double bc2 = 1.0 - std::pow(h.beta2, double(h.step));
  const float step_size = float(h.lr / bc1);
  const float inv_bc2_sqrt = float(1.0 / std::sqrt(bc2));
  // every element on its own: the tensors in chunks of kChunk elements, one job of blocks of
  // chunks across the dense threads (csrc/dense.hpp)
  constexpr int64_t kChunk = 1 << 14;
  int64_t first[kMaxTensors + 1] = {};  // chunks of tensors before q
  for (int q = 0; q < t.count; ++q) first[q + 1] = first[q] + (t.size[q] + kChunk - 1) / kChunk;
  dense::for_blocks(first[t.count], 1, 8 * kChunk, [&](int64_t c0, int64_t c1) {
    int q = 0;
    for (int64_t c = c0; c < c1; ++c) {
      while (c >= first[q + 1]) ++q;
      const int64_t i0 = (c - first[q]) * kChunk, i1 = std::min(t.size[q], i0 + kChunk);
      adam_step(t.p[q] + i0, t.g[q] + i0, t.m[q] + i0, t.v[q] + i0, i1 - i0, inv_scale,
                float(h.beta1), float(h.beta2), step_size, inv_bc2_sqrt, float(h.eps));
    }
  });
}

}  // namespace adam
}  // namespace pgfast
