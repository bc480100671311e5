"""Gradient flow through time, from nnspec's reference kernels only: the lecture's "grad can
flow" claim made visible.

One long sequence (T = 120), a loss on the last output only, L = 1/2 ||V h_T + c - z||^2, and
the norm of the gradient that reaches each earlier state, walked back one step at a time with
the reference's one-step vjps:

- RNN, ||W||_2 = 0.6: ||dL/dh_t|| shrinks at least like 0.6^(T-t) (vanishing; the
  Jacobian-product bound of spec/rnn.py);
- RNN, W = 1.07 x an orthogonal matrix, in tanh's linear regime (inputs of 1e-5): unclipped, it
  grows backwards like 1.07^(T-t) (exploding); clipped to norm 1 at every step (the notes'
  "threshold · g / ||g||", reference.rnn.clip_grad_norm), it stays bounded;
- LSTM with the forget gate near 1 (b_f = 6: f ≈ 0.998): ||dL/dc_t|| stays of the same order
  over the whole sequence (dc_{t-1} = f_t ⊙ dc_t + ..., the notes' uninterrupted flow).

gradient_flow_figure(out_dir) draws exactly gradient_flow_norms() (two panels, log scale) and
returns the PNG's path. matplotlib is imported inside the function (Agg, no pyplot), as in
reports/figures.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reference import lstm as ref_lstm
from reference import rnn as ref_rnn

STEPS = 120
HIDDEN = 16
INPUTS = 4
CLIP = 1.0
FILENAME = "gradient_flow.png"


def _spectral_scaled(rng: np.random.Generator, n: int, norm: float) -> np.ndarray:
    W = rng.standard_normal((n, n))
    return W * (norm / np.linalg.norm(W, 2))


def _rnn_norms(W, U, b, x, V, c, z, clip: float | None) -> np.ndarray:
    """||dL/dh_t|| for t = 0 .. T (h_0 the initial state), L on the last output only."""
    B, T, _ = x.shape
    H = W.shape[0]
    states = [np.zeros((B, H))]
    for t in range(T):  # forward, one step at a time: the state before each step
        states.append(ref_rnn.rnn(x[:, t : t + 1], states[-1], W, U, b)[1])
    dh = (V @ states[-1][0] + c - z)[None] @ V  # dL/dh_T = V^T (y_T - z)
    norms = [np.linalg.norm(dh)]
    for t in range(T - 1, -1, -1):
        if clip is not None:
            (dh,) = ref_rnn.clip_grad_norm(dh, max_norm=clip)
        no_output = np.zeros((B, 1, H))
        dh = ref_rnn.rnn_vjp(no_output, x[:, t : t + 1], states[t], W, U, b, dh_T=dh)[1]
        norms.append(np.linalg.norm(dh))
    return np.array(norms[::-1])


def _lstm_norms(W, b, x, V, c, z) -> np.ndarray:
    """||dL/dc_t|| for t = 0 .. T, L on the last output h_T only."""
    B, T, _ = x.shape
    H = W.shape[0] // 4
    states = [(np.zeros((B, H)), np.zeros((B, H)))]
    for t in range(T):
        _, h, cell = ref_lstm.lstm(x[:, t : t + 1], *states[-1], W, b)
        states.append((h, cell))
    dh = (V @ states[-1][0][0] + c - z)[None] @ V  # dL/dh_T
    norms = [np.linalg.norm(_cell_gradient_at_last(states, x, W, b, dh))]  # ||dL/dc_T||
    dc = np.zeros((B, H))  # no loss on c_T itself: the vjp adds the path through h_T
    for t in range(T - 1, -1, -1):
        no_output = np.zeros((B, 1, H))
        _, dh, dc, _, _ = ref_lstm.lstm_vjp(
            no_output, x[:, t : t + 1], *states[t], W, b, dh_T=dh, dc_T=dc
        )
        norms.append(np.linalg.norm(dc))  # ||dL/dc_{t-1}|| (t-1 = the step's initial state)
    return np.array(norms[::-1])


def _cell_gradient_at_last(states, x, W, b, dh_T) -> np.ndarray:
    """dL/dc_T = dh_T ⊙ o_T ⊙ (1 - tanh^2 c_T), o_T from the last step's gates."""
    H = W.shape[0] // 4
    h_prev, _ = states[-2]
    a = np.concatenate([h_prev, x[:, -1]], axis=1) @ W.T + b
    o = ref_lstm.sigmoid(a[:, 2 * H : 3 * H])
    c_T = states[-1][1]
    return dh_T * o * (1 - np.tanh(c_T) ** 2)


def gradient_flow_norms(steps: int = STEPS, seed: int = 0) -> dict[str, np.ndarray]:
    """The curves of the figure: series name -> norms for t = 0 .. steps."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, steps, INPUTS))
    U = rng.standard_normal((HIDDEN, INPUTS)) / np.sqrt(INPUTS)
    b = rng.standard_normal(HIDDEN) * 0.1
    V = rng.standard_normal((2, HIDDEN)) / np.sqrt(HIDDEN)
    c, z = np.zeros(2), rng.standard_normal(2)
    small = _spectral_scaled(rng, HIDDEN, 0.6)
    # Exploding needs tanh's linear regime (a saturated tanh has tanh' ~ 0 and vanishes too):
    # an orthogonal W scaled by 1.07 and inputs of 1e-5 keep every |h| below ~0.5.
    Q, _ = np.linalg.qr(rng.standard_normal((HIDDEN, HIDDEN)))
    large, quiet, no_bias = 1.07 * Q, 1e-5 * x, np.zeros(HIDDEN)
    W_lstm = rng.standard_normal((4 * HIDDEN, HIDDEN + INPUTS)) / np.sqrt(HIDDEN + INPUTS)
    b_lstm = rng.standard_normal(4 * HIDDEN) * 0.1
    b_lstm[HIDDEN : 2 * HIDDEN] = 6.0  # forget gate f = sigma(6 + ...) ≈ 0.998
    return {
        "RNN, ||W|| = 0.6: ||dL/dh_t|| (vanishing)": _rnn_norms(small, U, b, x, V, c, z, None),
        "RNN, ||W|| = 1.07: ||dL/dh_t|| (exploding)": _rnn_norms(
            large, U, no_bias, quiet, V, c, z, None
        ),
        f"RNN, ||W|| = 1.07, clipped to {CLIP:g} at every step": _rnn_norms(
            large, U, no_bias, quiet, V, c, z, CLIP
        ),
        "LSTM, f ≈ 1: ||dL/dc_t|| (grad can flow)": _lstm_norms(W_lstm, b_lstm, x, V, c, z),
    }


def gradient_flow_figure(out_dir: str | Path) -> Path:
    """Write gradient_flow.png (log-scale gradient norms against t) into out_dir."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    series = list(gradient_flow_norms().items())
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    panels = [
        ("vanishing (RNN) vs uninterrupted flow (LSTM)", [series[0], series[3]]),
        ("exploding (RNN) and clipping", [series[1], series[2]]),
    ]
    for k, (title, curves) in enumerate(panels):
        ax = fig.add_subplot(1, 2, k + 1)
        for (label, norms), style in zip(curves, ("-", "--"), strict=True):
            t = np.arange(len(norms))
            ax.semilogy(t, np.maximum(norms, 1e-300), style, label=label)
        ax.set_xlabel(f"t (the loss is on the last output, T = {len(t) - 1})")
        ax.set_ylabel("gradient norm")
        ax.set_title(title)
        ax.legend(fontsize="small")
    fig.suptitle("Gradient flow through time, from nnspec's reference kernels")
    FigureCanvasAgg(fig)
    path = out / FILENAME
    fig.savefig(path, dpi=100)
    return path
