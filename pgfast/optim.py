"""Optimiser used by every algorithm: :class:`FastAdam` (fused Adam with global grad-norm clipping)."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List

import torch

__all__ = ["FastAdam", "make_adam"]


class FastAdam:
    """Adam over a fixed list of tensors, with global grad-norm clipping folded in.

    Same update as ``torch.optim.Adam(fused=True)`` (it calls the same fused kernel,
    ``torch._fused_adam_``) without the per-call Python bookkeeping of
    ``torch.optim`` (~70 us per step on CPU, as much as the kernel). Clipping
    ``max_grad_norm`` is applied as the kernel's gradient divisor
    ``max(1, ||g|| / max_grad_norm)``, i.e. ``g * min(1, max_grad_norm / ||g||)`` like
    ``torch.nn.utils.clip_grad_norm_``. Without the fused kernel (old torch, other
    devices) it falls back to ``torch.optim.Adam`` + ``clip_grad_norm_``.

    Gradients live in preallocated ``p.grad`` tensors (zeroed by :meth:`zero_grad`;
    hand-written gradients may overwrite them). ``param_groups[0]["lr"]`` is read
    at every step (for learning-rate annealing).
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float, eps: float = 1e-5,
                 betas: tuple = (0.9, 0.999)) -> None:
        self.params = list(params)
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        self.param_groups = [{"lr": float(lr), "betas": tuple(betas), "eps": float(eps)}]
        devs = {p.device.type for p in self.params}
        self.fused = hasattr(torch, "_fused_adam_") and devs <= {"cpu", "cuda"} and all(
            p.dtype in (torch.float32, torch.float64) for p in self.params)
        if self.fused:
            self.exp_avg = [torch.zeros_like(p) for p in self.params]
            self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
            self.steps = [torch.zeros((), dtype=torch.float32, device=p.device)
                          for p in self.params]
        else:  # pragma: no cover - depends on the torch build
            self._opt = torch.optim.Adam(self.params, lr=lr, eps=eps, betas=betas, foreach=True)
            self.param_groups = self._opt.param_groups

    def zero_grad(self) -> None:
        """Zero all gradients in place."""
        torch._foreach_zero_([p.grad for p in self.params])  # type: ignore[misc]  # preallocated

    def step(self, max_grad_norm: float = 0.0) -> None:
        """One Adam step on the current ``p.grad`` (clipped to ``max_grad_norm`` if > 0)."""
        grads: List[torch.Tensor] = [p.grad for p in self.params]  # type: ignore[misc]  # preallocated
        if not self.fused:  # pragma: no cover
            if max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(self.params, max_grad_norm, foreach=True)
            self._opt.step()
            return
        scale = None
        if max_grad_norm > 0:
            total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            scale = (total.float() + 1e-6).div_(max_grad_norm).clamp_(min=1.0)
        g: Dict[str, Any] = self.param_groups[0]
        torch._foreach_add_(self.steps, 1)
        torch._fused_adam_(self.params, grads, self.exp_avg, self.exp_avg_sq, [], self.steps,
                           amsgrad=False, lr=g["lr"], beta1=g["betas"][0], beta2=g["betas"][1],
                           weight_decay=0.0, eps=g["eps"], maximize=False, grad_scale=scale,
                           found_inf=None)

    def state_dict(self) -> Dict[str, Any]:
        """Moments, step counts and hyperparameters."""
        if not self.fused:  # pragma: no cover
            return self._opt.state_dict()
        return {"param_groups": [dict(self.param_groups[0])],
                "exp_avg": [t.clone() for t in self.exp_avg],
                "exp_avg_sq": [t.clone() for t in self.exp_avg_sq],
                "steps": [t.clone() for t in self.steps]}

    def load_state_dict(self, d: Dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (tensors are moved to the parameters' device)."""
        if not self.fused:  # pragma: no cover
            self._opt.load_state_dict(d)
            return
        self.param_groups[0].update(d["param_groups"][0])
        for name in ("exp_avg", "exp_avg_sq", "steps"):
            for dst, src in zip(getattr(self, name), d[name]):
                dst.copy_(src)


def make_adam(params: Iterable[torch.Tensor], lr: float, eps: float = 1e-5) -> FastAdam:
    """The optimiser every algorithm uses (:class:`FastAdam`, eps 1e-5 as CleanRL/SB3)."""
    return FastAdam(params, lr=lr, eps=eps)
