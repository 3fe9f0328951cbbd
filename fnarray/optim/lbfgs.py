"""L-BFGS (``torch.optim.LBFGS``): limited-memory quasi-Newton steps driven by a closure.

The two-loop recursion runs on the parameters flattened into one vector.  Without a line
search the step is ``lr`` (``min(1, 1/|g|_1) * lr`` on the very first iteration), as in
PyTorch.
"""

from __future__ import annotations

import fnarray as fa
from fnarray.compat.grad_mode import enable_grad
from fnarray.optim.optimizer import Optimizer


class LBFGS(Optimizer):
    """``LBFGS(params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7,
    tolerance_change=1e-9, history_size=100, line_search_fn=None)``; one parameter group."""

    def __init__(self, params, lr: float = 1.0, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 history_size: int = 100, line_search_fn: str | None = None):
        if line_search_fn is not None:
            raise ValueError(f"LBFGS: line_search_fn={line_search_fn!r} is not available; use "
                             f"line_search_fn=None (fixed step lr)")
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval or max_iter * 5 // 4,
                        tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def _flat_grad(self):
        return fa.concatenate([
            fa.reshape(p.grad.array if p.grad is not None else fa.zeros_like(p.array), (-1,))
            for p in self._params])

    def _add(self, t, d) -> None:
        offset = 0
        for p in self._params:
            n = p.numel()
            p.data = p.array + t * fa.reshape(d[offset:offset + n], tuple(p.shape))
            offset += n

    def step(self, closure):
        """Up to ``max_iter`` L-BFGS iterations; returns the loss of the first evaluation."""
        if closure is None:
            raise ValueError("LBFGS.step needs a closure that re-evaluates the loss")
        g = self.param_groups[0]
        lr, history = g["lr"], g["history_size"]
        tol_grad, tol_change = g["tolerance_grad"], g["tolerance_change"]
        state = self.state.setdefault("global", {"func_evals": 0, "n_iter": 0})

        def evaluate():
            with enable_grad():
                return closure()

        orig_loss = evaluate()
        loss = float(orig_loss)
        evals = 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if float(fa.max(fa.abs(flat_grad))) <= tol_grad:
            return orig_loss
        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs", []), state.get("old_stps", []), state.get("ro", [])
        h_diag, prev_flat_grad = state.get("H_diag", 1.0), state.get("prev_flat_grad")
        n_iter = 0
        while n_iter < g["max_iter"]:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d, old_dirs, old_stps, ro, h_diag = -flat_grad, [], [], [], 1.0
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = float(fa.vecdot(y, s))
                if ys > 1e-10:
                    if len(old_dirs) == history:
                        old_dirs.pop(0), old_stps.pop(0), ro.pop(0)
                    old_dirs.append(y), old_stps.append(s), ro.append(1.0 / ys)
                    h_diag = ys / float(fa.vecdot(y, y))
                al = [0.0] * len(old_dirs)
                q = -flat_grad
                for i in range(len(old_dirs) - 1, -1, -1):
                    al[i] = float(fa.vecdot(old_stps[i], q)) * ro[i]
                    q = q - al[i] * old_dirs[i]
                d = q * h_diag
                for i in range(len(old_dirs)):
                    be_i = float(fa.vecdot(old_dirs[i], d)) * ro[i]
                    d = d + (al[i] - be_i) * old_stps[i]
            prev_flat_grad, prev_loss = flat_grad, loss
            t = min(1.0, 1.0 / float(fa.sum(fa.abs(flat_grad)))) * lr if state["n_iter"] == 1 else lr
            if float(fa.vecdot(flat_grad, d)) > -tol_change:
                break
            self._add(t, d)
            opt_cond = False
            if n_iter != g["max_iter"]:
                loss = float(evaluate())
                flat_grad = self._flat_grad()
                opt_cond = float(fa.max(fa.abs(flat_grad))) <= tol_grad
                evals += 1
                state["func_evals"] += 1
            if n_iter == g["max_iter"] or evals >= g["max_eval"] or opt_cond:
                break
            if float(fa.max(fa.abs(d * t))) <= tol_change or abs(loss - prev_loss) < tol_change:
                break
        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=h_diag,
                     prev_flat_grad=prev_flat_grad)
        return orig_loss

    def state_dict(self) -> dict:
        return {"state": dict(self.state), "param_groups": [
            {**{k: v for k, v in self.param_groups[0].items() if k != "params"},
             "params": list(range(len(self._params)))}]}

    def load_state_dict(self, state_dict: dict) -> None:
        self.param_groups[0].update({k: v for k, v in state_dict["param_groups"][0].items()
                                     if k != "params"})
        self.state = dict(state_dict["state"])
