"""MSA vs W-MSA cost against image size (formula and counted), and whole-network FLOPs and
parameters of the standard ViT and Swin configurations from the FLOP models.

Counting convention (spec/swin.py): multiply-adds (MACs) of the matrix products and
convolutions; softmax, scales, biases, norms and activations are not counted. That is what the
Swin paper's tables call "FLOPs"; torch.utils.flop_counter counts 2 FLOPs per MAC (halved here).

- `swin_cost_figure(out_dir)` writes swin_cost.png and returns its path: Ω(MSA) = 4hwC² +
  2(hw)²C and Ω(W-MSA) = 4hwC² + 2M²hwC for one Swin-T stage-1 layer (C = 96, M = 7, a 4x4
  patch embedding: h = w = image side / 4) against the image side, as lines, and the MACs
  FlopCounterMode counts on running layers (nnspec's torch MSA layer and torchvision's
  ShiftedWindowAttention, on the meta device: shapes only, no arithmetic) as markers. Without
  torch only the formulas are drawn.
- `network_cost_rows()` / `network_cost_table()` give the whole-network MACs and parameter
  counts of ViT-S/16, ViT-B/16, ViT-L/16 at 224 and Swin-T/S/B at 224 from
  reference.vit.vit_macs / vit_params and reference.swin.swin_macs / swin_params (tests check
  the models against timm's counted FLOPs and parameters).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from reference import swin, vit

CHANNELS = 96  # Swin-T stage 1
WINDOW = 7
PATCH = 4
IMAGE_SIDES = tuple(28 * k for k in (2, 4, 6, 8, 12, 16, 24, 32))  # 56 .. 896 pixels

VIT_CONFIGS = {
    "ViT-S/16": {"embed_dim": 384, "depth": 12, "num_heads": 6},
    "ViT-B/16": {"embed_dim": 768, "depth": 12, "num_heads": 12},
    "ViT-L/16": {"embed_dim": 1024, "depth": 24, "num_heads": 16},
}
SWIN_CONFIGS = {
    "Swin-T": {"embed_dim": 96, "depths": (2, 2, 6, 2), "num_heads": (3, 6, 12, 24)},
    "Swin-S": {"embed_dim": 96, "depths": (2, 2, 18, 2), "num_heads": (3, 6, 12, 24)},
    "Swin-B": {"embed_dim": 128, "depths": (2, 2, 18, 2), "num_heads": (4, 8, 16, 32)},
}


def formula_costs(sides: Sequence[int] = IMAGE_SIDES) -> dict[str, list[int]]:
    """Ω(MSA) and Ω(W-MSA) of one C = 96, M = 7 layer on the (side / 4)² token map."""
    hs = [side // PATCH for side in sides]
    return {
        "MSA": [swin.msa_macs(h, h, CHANNELS) for h in hs],
        "W-MSA": [swin.w_msa_macs(h, h, CHANNELS, WINDOW) for h in hs],
    }


def counted_costs(sides: Sequence[int] = IMAGE_SIDES) -> dict[str, list[int]] | None:
    """MACs counted by FlopCounterMode on the running layers (meta tensors), or None without
    torch/torchvision."""
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("torchvision") is None:
        return None
    import torch
    from torchvision.models.swin_transformer import ShiftedWindowAttention

    from conformance.adapters.torch_vision import _MSA, counted_macs

    heads = 3
    msa, w_msa = [], []
    for side in sides:
        h = side // PATCH
        x = torch.zeros(1, h, h, CHANNELS, device="meta")
        msa.append(counted_macs(_MSA(CHANNELS, heads, x), x))
        layer = ShiftedWindowAttention(CHANNELS, [WINDOW] * 2, [0, 0], heads).to("meta")
        w_msa.append(counted_macs(layer, x))
    return {"MSA": msa, "W-MSA": w_msa}


def swin_cost_figure(out_dir: Path | str, sides: Sequence[int] = IMAGE_SIDES) -> Path:
    """Writes swin_cost.png into out_dir (log-log: MACs against the image side) and returns
    its path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    formula = formula_costs(sides)
    counted = counted_costs(sides)
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    colors = {"MSA": "tab:red", "W-MSA": "tab:blue"}
    labels = {
        "MSA": "Ω(MSA) = 4hwC² + 2(hw)²C",
        "W-MSA": f"Ω(W-MSA) = 4hwC² + 2M²hwC (M = {WINDOW})",
    }
    for name, values in formula.items():
        ax.plot(sides, values, color=colors[name], label=labels[name])
        if counted is not None:
            ax.plot(sides, counted[name], "o", color=colors[name], mfc="none",
                    label=f"{name} counted (torch.utils.flop_counter / 2)")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"image side (pixels); tokens h = w = side / {PATCH}")
    ax.set_ylabel("multiply-adds per layer")
    ax.set_title(f"One attention layer, C = {CHANNELS}: MSA is quadratic, W-MSA linear in hw")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "swin_cost.png"
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)
    return path


def network_cost_rows(img_size: int = 224) -> list[dict]:
    """One row per standard configuration: name, GMACs, millions of parameters, and the MACs
    by part (from the FLOP models)."""
    rows = []
    for name, cfg in VIT_CONFIGS.items():
        macs = vit.vit_macs(img_size=img_size, patch_size=16, **cfg)
        rows.append({"model": name, "macs": macs, "params": vit.vit_params(img_size, 16, **cfg)})
    for name, cfg in SWIN_CONFIGS.items():
        macs = swin.swin_macs(img_size=img_size, **cfg)
        rows.append({"model": name, "macs": macs, "params": swin.swin_params(img_size, **cfg)})
    for row in rows:
        row["gmacs"] = row["macs"]["total"] / 1e9
        row["mparams"] = row["params"] / 1e6
    return rows


def network_cost_cells(img_size: int = 224) -> dict[str, list]:
    """{"headers", "rows"} of network_cost_rows as text: GMACs (the papers' "GFLOPs"), GFLOPs
    as torch.utils.flop_counter counts them (2 per MAC), parameters, attention MACs share. The
    report renders it (one of summary.json's "tables")."""
    rows = [
        [
            r["model"],
            f"{r['gmacs']:.2f}",
            f"{2 * r['gmacs']:.2f}",
            f"{r['mparams']:.2f}",
            f"{100 * r['macs']['attention'] / r['macs']['total']:.0f}%",
        ]
        for r in network_cost_rows(img_size)
    ]
    headers = [f"model ({img_size}²)", "GMACs", "GFLOPs (2/MAC)", "params (M)", "attention"]
    return {"headers": headers, "rows": rows}


def network_cost_table(img_size: int = 224) -> str:
    """network_cost_cells as a Markdown table."""
    from tabulate import tabulate

    cells = network_cost_cells(img_size)
    return tabulate(cells["rows"], headers=cells["headers"], tablefmt="github")
