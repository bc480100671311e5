"""How far cuDNN's float32 recurrent kernels put tanh and sigmoid from the correctly rounded
value, beside torch's native CUDA kernels (cudnn disabled): the measurement behind torch-cuda's
declared cuDNN deviation (conformance/adapters/torch_cuda.py). One-unit layers whose weights make
a state equal to one activation of the input x: an RNN's h = tanh(x); an LSTM whose other gates
saturate to exactly 1 (c = sigmoid(x), or tanh(x) through the g gate); a GRU with z ~ 0 (h =
tanh(x)). A ReLU RNN's 64 x 64 product shows whether the matmul reads TF32.
Usage (on a CUDA machine): python reports/samples/recurrent_activations.py"""

from __future__ import annotations

import numpy as np

X = (-12.0, 12.0, 400001)  # linspace of the inputs
BANDS = ((0, 1e-4), (1e-4, 1e-2), (1e-2, 0.1), (0.1, 0.5), (0.5, 1), (1, 2), (2, 4), (4, 9))


def ulps(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|got - exact| in float32 spacings at the exact value."""
    return np.abs(got - exact) / np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)


def line(name: str, u: np.ndarray) -> str:
    return (
        f"  {name:30s} max {u.max():8.2f} ulp  mean {u.mean():6.2f}"
        f"  share > 1 ulp {np.mean(u > 1):.3f}  > 2 ulp {np.mean(u > 2):.3f}"
    )


def activations(torch, x, device: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (kernel's float32 result as float64, exact value) at the float32 inputs x."""
    x64 = x.double().numpy()
    inp = x.view(1, -1, 1).to(device)
    tanh, sigmoid = np.tanh(x64), 1 / (1 + np.exp(-x64))
    got = {}
    with torch.no_grad():
        rnn = torch.nn.RNN(1, 1, nonlinearity="tanh").to(device)
        for p, v in zip(rnn.parameters(), (1.0, 0.0, 0.0, 0.0), strict=True):
            p.fill_(v)
        got["rnn h = tanh(x)"] = (rnn(inp)[0], tanh)
        lstm = torch.nn.LSTM(1, 1).to(device)
        lstm.weight_hh_l0.zero_()
        lstm.bias_hh_l0.zero_()
        # torch's gate order i, f, g, o; tanh(20) and sigmoid(20) round to 1 in float32
        for gate, bias, exact, name in (
            (0, (0.0, 0.0, 20.0, 20.0), sigmoid, "lstm c = sigmoid(x) (i gate)"),
            (2, (20.0, 0.0, 0.0, 20.0), tanh, "lstm c = tanh(x) (g gate)"),
        ):
            w = torch.zeros(4, 1)
            w[gate] = 1.0
            lstm.weight_ih_l0.copy_(w)
            lstm.bias_ih_l0.copy_(torch.tensor(bias))
            got[name] = (lstm(inp)[1][1], exact)
        gru = torch.nn.GRU(1, 1).to(device)
        gru.weight_hh_l0.zero_()
        gru.bias_hh_l0.zero_()
        gru.weight_ih_l0.copy_(torch.tensor([[0.0], [0.0], [1.0]]))  # r, z, n
        gru.bias_ih_l0.copy_(torch.tensor([0.0, -30.0, 0.0]))  # z = sigmoid(-30) ~ 1e-13
        got["gru h = tanh(x)"] = (gru(inp)[0], tanh)
    return {k: (v.reshape(-1).cpu().double().numpy(), e) for k, (v, e) in got.items()}


def matmul_error(torch, device: str) -> float:
    """max |error| / sum |w x| of a ReLU RNN's input product (float32 unit 6e-8, TF32 4.9e-4)."""
    g = torch.Generator().manual_seed(0)
    w, x = torch.randn(64, 64, generator=g), torch.randn(1, 4096, 64, generator=g)
    rnn = torch.nn.RNN(64, 64, nonlinearity="relu", bias=False)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(w)
        rnn.weight_hh_l0.zero_()
        out = rnn.to(device)(x.to(device))[0][0].cpu().double().numpy()
    x64, w64 = x[0].double().numpy(), w.double().numpy()
    exact = np.maximum(x64 @ w64.T, 0)
    return float((np.abs(out - exact) / (np.abs(x64) @ np.abs(w64).T)).max())


def main() -> None:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    cudnn_version = torch.backends.cudnn.version()
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {cudnn_version}, {name}")
    x = torch.linspace(*X, dtype=torch.float32)
    magnitude = np.abs(x.double().numpy())
    for cudnn in (True, False) if device == "cuda" else (True,):
        torch.backends.cudnn.enabled = cudnn
        print(f"float32, {device}, cudnn.enabled = {cudnn}")
        results = activations(torch, x, device)
        for k, (got, exact) in results.items():
            print(line(k, ulps(got, exact)))
        got, exact = results["rnn h = tanh(x)"]
        rel = np.abs(got - exact) / np.maximum(np.abs(exact), 1e-300)
        print(f"  tanh: max relative error {rel.max():.3g}; by |x|:")
        u = ulps(got, exact)
        for lo, hi in BANDS:
            m = (magnitude >= lo) & (magnitude < hi)
            print(f"    [{lo:g}, {hi:g}): max {u[m].max():7.2f} ulp, mean {u[m].mean():6.2f}")
        print(f"  matmul: max |error| / sum |w x| = {matmul_error(torch, device):.3g}")


if __name__ == "__main__":
    main()
