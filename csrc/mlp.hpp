// The one C++ MLP of pgfast: y = L_{n-1}(act(... act(L_0(x)))) with L_i(x) = x W_i + b_i,
// W_i row-major [d_i, d_{i+1}], a tanh or ReLU hidden activation and a linear output layer.
// The native rollout's forward, policy_evaluate, and the PPO, VPG and TRPO updates all run
// these functions; the limits (kMaxLayers, the activations) are defined here only and read
// by Python from pgfast._C (MLP_MAX_LAYERS, MLP_ACTIVATIONS).
//
// Arithmetic: float32, csrc/dense.hpp's products (a row's result never depends on the other
// rows of its batch, so a minibatch's forward equals those rows of the whole batch's, bit
// for bit). Activations follow torch: tanh is Eigen's float fit (a few ulp), ReLU keeps NaN
// (x > 0 ? x : 0 would turn it into 0; torch.relu(nan) is nan) and its derivative is
// torch's threshold_backward (g where h > 0, else 0).
//
// This header sees no Python.
#pragma once

#include <cstdint>
#include <vector>

namespace pgfast {
namespace mlp {

constexpr int kMaxLayers = 8;
enum class Act : int { kTanh = 0, kRelu = 1 };
constexpr int kNumActs = 2;
constexpr const char* kActNames[kNumActs] = {"tanh", "relu"};

// Views of one network's parameters (not owned).
struct Mlp {
  int num_layers = 0;
  int dims[kMaxLayers + 1] = {};    // dims[0] = input, dims[num_layers] = output
  const float* w[kMaxLayers] = {};  // [dims[i], dims[i + 1]] row-major
  const float* b[kMaxLayers] = {};  // [dims[i + 1]]
  Act act = Act::kTanh;

  int max_width() const;
  int out_dim() const { return dims[num_layers]; }
};

// A forward that keeps the layer inputs (for backward and jvp) plus the scratch they use.
// prepare() once per batch size; the buffers grow only.
struct Trace {
  const float* x = nullptr;            // the input of layer 0 (the caller's)
  int64_t n = 0;
  std::vector<float> h[kMaxLayers];    // h[i], i >= 1: the input of layer i, [n, dims[i]]
  std::vector<float> out;              // [n, out_dim]
  std::vector<float> wt, pa, pb, pc;   // a transposed weight, backward/jvp ping-pong

  void prepare(const Mlp& m, int64_t nmax);
  const float* input(int i) const { return i == 0 ? x : h[i].data(); }
};

// The hidden activation in place on n floats.
void activate(Act act, float* v, int64_t n);

// g *= the activation's derivative at its output h (n floats).
void act_backward(Act act, float* g, const float* h, int64_t n);

// Forward of x [n, dims[0]] keeping the layer inputs in t (t.x = x; t.prepare first).
void forward(const Mlp& m, const float* x, int64_t n, Trace& t);

// Forward without keeping: out [n, out_dim]; scratch of scratch_size(m, n) floats.
int64_t scratch_size(const Mlp& m, int64_t n);
void forward_into(const Mlp& m, const float* x, int64_t n, float* out, float* scratch);

// Backward of the last forward in t for dL/d out g_out [n, out_dim]: gw[i] [dims[i],
// dims[i + 1]] and gb[i] [dims[i + 1]] are overwritten with dL/dW_i, dL/db_i.
void backward(const Mlp& m, Trace& t, const float* g_out, float* const* gw, float* const* gb);

// dL/dW_i into gw [dims[i], dims[i + 1]] and dL/db_i into gb [dims[i + 1]] for g = dL/dz_i
// [n, dims[i + 1]] (z_i: layer i's output before the activation), at the last forward in t.
void layer_grads(const Mlp& m, Trace& t, int i, const float* g, float* gw, float* gb);

// The rows of the output Jacobian at the last forward in t: for each hidden layer i <
// num_layers - 1, jac[i] [n, out_dim, dims[i + 1]] = d out_k / d z_i of each row r and output
// k (z_i before the activation; the output layer's is the identity and is not stored).
// Costs out_dim backwards without the weight gradients.
void output_jacobian(const Mlp& m, Trace& t, std::vector<float>* jac);

// Forward-mode derivative of the last forward in t along parameter tangents vw[i] (W_i's
// shape) and vb[i]: d_out [n, out_dim] = J v (the input held fixed).
void jvp(const Mlp& m, Trace& t, const float* const* vw, const float* const* vb, float* d_out);

}  // namespace mlp
}  // namespace pgfast
