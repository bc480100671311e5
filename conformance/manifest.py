"""What a run records about itself: code, library versions, machine, adapters, command."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
from pathlib import Path
from typing import Any

LIBRARIES = ("numpy", "ml_dtypes", "hypothesis", "sympy", "torch", "onnx", "onnxruntime")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names(adapters: list) -> list[str]:
    names = []
    for _, adapter, reason in adapters:
        if reason is None and getattr(adapter, "device", "cpu").startswith("cuda"):
            names.append(_describe(adapter).get("gpu", "cuda"))
    return sorted(set(names))


def _describe(adapter: Any) -> dict[str, Any]:
    try:
        return dict(adapter.describe())
    except Exception as exc:
        return {"describe_error": f"{type(exc).__name__}: {exc}"}


def collect(config: Any, adapters: list, started: float) -> dict[str, Any]:
    from conformance import plugin, profiles

    return {
        "run_id": Path(config.nnspec_results_dir).name,
        "started": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(),
        "command": plugin.command_line(),
        "git_commit": plugin.git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "gpus": gpu_names(adapters),
        "versions": {lib: _version(lib) for lib in LIBRARIES},
        "hypothesis_profile": profiles.name_of(config),
        "adapters": [
            {
                "name": adapter.name,
                "spec": spec,
                "available": reason is None,
                "reason": reason,
                "device": getattr(adapter, "device", "cpu"),
                "dtypes": list(adapter.dtypes),
                "variants": dict(getattr(adapter, "variants", {}) or {}),
                "describe": _describe(adapter) if reason is None else {},
            }
            for spec, adapter, reason in adapters
        ],
    }
