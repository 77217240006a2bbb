// The native classic-control envs: one #include and one entry in ClassicEnvs
// per env. pgfast._C builds its env registry (pgfast._C.classic_envs(),
// pgfast._C.ClassicVecEnv) from this list, and pgfast.envs.classic its
// VectorEnv classes from that registry.
//
// This header sees no Python.
#pragma once

#include "envs/acrobot.hpp"
#include "envs/cartpole.hpp"
#include "envs/mountain_car.hpp"
#include "envs/pendulum.hpp"

namespace pgfast {
namespace envs {

template <class... Envs>
struct EnvList {};

using ClassicEnvs = EnvList<CartPole, Pendulum, MountainCar, MountainCarContinuous, Acrobot>;

}  // namespace envs
}  // namespace pgfast
