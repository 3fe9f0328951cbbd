# %% [markdown]
# # 05 · Per-example gradients with `vmap(grad)`, and what clipping them does
#
# **Question.** A minibatch gradient is the mean of per-example gradients, but frameworks
# usually only give us the mean. `fa.vmap(fa.grad(loss))` gives every example's gradient in one
# batched call. How are per-example gradient norms distributed, how does that distribution
# change while a network trains on MNIST, and what does clipping each example's gradient (as
# in differentially private SGD, DP-SGD) do to accuracy?

# %%
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import fnarray as fa
from fnarray import nn
from fnarray.examples.mnist import digit_arrays

if Path.cwd().name == "notebooks":
    os.chdir("..")  # the repository root: the main job looks for ../shared/data/mnist from there
x_train, y_train, x_test, y_test, source = digit_arrays(fallback_sizes=(8000, 2000))
x_train, x_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
print("data:", source)

net = nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
init = {name: fa.asarray(p.detach().numpy()) for name, p in net.named_parameters()}
print(f"{sum(int(np.prod(v.shape)) for v in init.values()):,} parameters")


def example_loss(params, x, y):
    """Cross-entropy of one image (x: 784 values, y: its label)."""
    logits = nn.functional_call(net, params, (x[None],))
    return -fa.log_softmax(logits, axis=1)[0, y]


def batch_loss(params, x, y):
    logp = fa.log_softmax(nn.functional_call(net, params, (x,)), axis=1)
    return -fa.mean(fa.take_along_axis(logp, y[:, None], axis=1))


per_example_grads = fa.jit(fa.vmap(fa.grad(example_loss), in_axes=(None, 0, 0)))

# %% [markdown]
# ## 1. `vmap(grad)` is exact, and much faster than a loop
# The mean of the per-example gradients must equal the gradient of the mean loss, and each
# row must equal the gradient computed for that example alone.

# %%
xb, yb = fa.asarray(x_train[:64]), fa.asarray(y_train[:64])
grads = per_example_grads(init, xb, yb)
mean_grad = fa.grad(batch_loss)(init, xb, yb)
for k in init:
    assert grads[k].shape == (64, *init[k].shape)
    gap = float(fa.max(fa.abs(fa.mean(grads[k], axis=0) - mean_grad[k])))
    print(f"{k:9s} per-example {tuple(grads[k].shape)}; |mean - batch gradient| = {gap:.1e}")
single = fa.grad(example_loss)(init, xb[7], yb[7])
print("example 7 alone vs row 7:", max(float(fa.max(fa.abs(single[k] - grads[k][7]))) for k in init))

one_grad = fa.jit(fa.grad(example_loss))
one_grad(init, xb[0], yb[0])
t0 = time.perf_counter()
for i in range(64):
    one_grad(init, xb[i], yb[i])
t_loop = time.perf_counter() - t0
t0 = time.perf_counter()
per_example_grads(init, xb, yb)
t_vmap = time.perf_counter() - t0
print(f"64 per-example gradients: loop {1e3 * t_loop:.1f} ms, vmap {1e3 * t_vmap:.1f} ms "
      f"({t_loop / t_vmap:.0f}x)")

# %% [markdown]
# ## 2. Three short training runs
# Plain SGD (learning rate 0.1, batch 64, 400 steps, about three epochs of the training
# images), then the same with each example's gradient clipped to norm `C = 1` before
# averaging, then DP-SGD: clipped, plus Gaussian noise of standard deviation `σ·C` added to
# the sum (σ = 1). All three start from the same weights and see the same batches. Every step
# we keep all 64 per-example gradient norms; every 25 steps, the test accuracy.

# %%
LR, STEPS, BATCH, CLIP, SIGMA = 0.1, 400, 64, 1.0, 1.0


def norms(grads):
    return fa.sqrt(sum(fa.sum(g.reshape(g.shape[0], -1) ** 2, axis=1) for g in grads.values()))


@fa.jit
def step_stats(params, x, y):
    grads = per_example_grads(params, x, y)
    return grads, norms(grads)


def accuracy(params):
    logits = nn.functional_call(net, params, (fa.asarray(x_test),))
    return float(fa.mean(fa.argmax(logits, axis=1) == fa.asarray(y_test)))


def train(clip=None, sigma=0.0, seed=0):
    rng = np.random.default_rng(seed)
    params, history = dict(init), {"norms": [], "acc": [], "clipped": []}
    batches = np.random.default_rng(1).permutation(np.tile(np.arange(len(x_train)), 4))
    for step in range(STEPS + 1):
        if step % 25 == 0:
            history["acc"].append((step, accuracy(params)))
        if step == STEPS:
            break
        idx = batches[step * BATCH:(step + 1) * BATCH]
        grads, n = step_stats(params, fa.asarray(x_train[idx]), fa.asarray(y_train[idx]))
        history["norms"].append(np.asarray(n))
        if clip is None:
            update = {k: fa.mean(g, axis=0) for k, g in grads.items()}
        else:
            scale = fa.minimum(1.0, clip / (n + 1e-12))
            history["clipped"].append(float(fa.mean(n > clip)))
            update = {}
            for k, g in grads.items():
                total = fa.sum(g * scale.reshape(-1, *[1] * (g.ndim - 1)), axis=0)
                noise = sigma * clip * rng.normal(size=total.shape)
                update[k] = (total + fa.asarray(noise, dtype="float32")) / BATCH
        params = {k: params[k] - LR * update[k] for k in params}
    history["norms"] = np.stack(history["norms"])
    return history


t0 = time.perf_counter()
runs = {"SGD": train(), f"clipped (C = {CLIP})": train(clip=CLIP),
        f"DP-SGD (C = {CLIP}, σ = {SIGMA})": train(clip=CLIP, sigma=SIGMA)}
print(f"3 runs x {STEPS} steps with per-example gradients: {time.perf_counter() - t0:.1f} s")
for name, h in runs.items():
    clipped = f", {100 * np.mean(h['clipped']):.0f}% of example gradients clipped" if h["clipped"] else ""
    print(f"{name:26s} final test accuracy {100 * h['acc'][-1][1]:.1f}%{clipped}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
ax = axes[0]
h = runs["SGD"]["norms"]
steps = np.arange(1, len(h) + 1)
window = 10  # pool 10 steps (640 examples) per point for smoother percentiles
pooled = h[: len(h) // window * window].reshape(-1, window * BATCH)
centres = steps[: len(pooled) * window].reshape(-1, window).mean(1)
p = np.percentile(pooled, [5, 25, 50, 75, 95], axis=1)
ax.fill_between(centres, p[0], p[4], alpha=0.2, color="tab:blue", label="5–95th percentile")
ax.fill_between(centres, p[1], p[3], alpha=0.4, color="tab:blue", label="25–75th percentile")
ax.plot(centres, p[2], color="tab:blue", lw=2, label="median")
ax.plot(centres, pooled.max(1), ":", color="tab:blue", lw=1, label="max")
ax.axhline(CLIP, color="tab:red", ls="--", label=f"clipping norm C = {CLIP}")
ax.set_yscale("log")
ax.set_xlabel("SGD step")
ax.set_ylabel("per-example gradient norm")
ax.set_title("Per-example gradient norms during plain SGD")
ax.legend(fontsize=8, loc="lower left")
ax.grid(alpha=0.3, which="both")

ax = axes[1]
bins = np.logspace(-5, 2, 57)
for (lo, hi), color in zip([(0, 20), (100, 140), (360, 400)], ["tab:orange", "tab:green", "tab:purple"]):
    values = np.clip(h[lo:hi].ravel(), bins[0], bins[-1])
    ax.hist(values, bins=bins, histtype="step", lw=2, color=color,
            weights=np.full(values.size, 100 / values.size), label=f"steps {lo + 1}–{hi}")
ax.axvline(CLIP, color="tab:red", ls="--", label=f"C = {CLIP}")
ax.set_xscale("log")
ax.set_xlabel("per-example gradient norm (log)")
ax.set_ylabel("% of examples per bin")
ax.set_title("Distribution at three stages (plain SGD)")
ax.legend(fontsize=8)

ax = axes[2]
for (name, run), marker in zip(runs.items(), "os^"):
    s, a = zip(*run["acc"])
    ax.plot(s, 100 * np.array(a), marker + "-", ms=4, label=name)
ax.set_xlabel("SGD step")
ax.set_ylabel("test accuracy (%)")
ax.set_ylim(top=100)
ax.set_title("Effect of per-example clipping on accuracy")
ax.legend(fontsize=8, loc="lower right")
ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What the numbers showed
# * `vmap(grad)` gives exactly the per-example gradients: their mean equals the batch gradient
#   to float32 rounding, and each row equals the gradient computed for that example alone. One
#   batched call is faster than a loop of 64 (already jitted) single-example gradients.
# * Per-example gradient norms span several orders of magnitude at every stage, and the
#   spread *widens* with training: most examples become well fit (their gradients shrink
#   by orders of magnitude), while a minority of hard or mislabelled-looking digits keep
#   large gradients — the maximum and the 95th percentile stay high while the median falls.
# * Clipping each example's gradient to `C` bounds the norm of every update by `C`, and early
#   in training almost every example is clipped, so with the same learning rate the clipped
#   runs take much smaller steps: they learn markedly more slowly and end this short run
#   several points below plain SGD, still improving. Clipping hurts most exactly where the
#   per-example norms are far above `C` — the reason DP-SGD is usually run with a larger
#   learning rate or a clipping norm near the median gradient norm.
# * DP-SGD's Gaussian noise (σ = 1) costs little on top of clipping at this batch size: the
#   noise on the mean gradient has standard deviation `σ·C / 64` per coordinate.
