"""Built-in adapters and the loader for third-party ones (--adapter, entry points)."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

from conformance.adapters.base import Adapter

ENTRY_POINT_GROUP = "nnspec.adapters"

# name -> "module:attribute"; imported lazily so a missing library costs nothing here.
BUILTINS: dict[str, str] = {
    "reference": "conformance.adapters.numpy_reference:NumpyReference",
    "torch": "conformance.adapters.pytorch:TorchCPU",
    # CUDA configurations (conformance/adapters/torch_cuda.py CONFIGS): TF32 off and on, cuDNN
    # off, deterministic algorithms, and one per scaled dot-product attention backend.
    **{
        name: f"conformance.adapters.torch_cuda:{name}"
        for name in (
            "torch-cuda",
            "torch-cuda-tf32",
            "torch-cuda-no-cudnn",
            "torch-cuda-deterministic",
            "torch-cuda-sdpa-math",
            "torch-cuda-sdpa-flash",
            "torch-cuda-sdpa-efficient",
            "torch-cuda-sdpa-cudnn",
        )
    },
    "onnx-reference": "conformance.adapters.onnx_graphs:OnnxReference",
    "onnxruntime": "conformance.adapters.onnx_graphs:OnnxRuntime",
    "hf-transformers": "conformance.adapters.hf:HFTransformers",
    "timm": "conformance.adapters.thirdparty_se:TimmCPU",
    "timm-cuda": "conformance.adapters.thirdparty_se:TimmCUDA",
}


class AdapterLoadError(Exception):
    """A bad --adapter spec; the message is one line meant for the user."""


def _import_target(spec: str) -> object:
    if ":" not in spec:
        raise AdapterLoadError(
            f"--adapter {spec!r}: expected 'path/to/file.py:Attr' or 'package.module:Attr'"
        )
    where, _, attr = spec.rpartition(":")
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where)
        if not path.is_file():
            raise AdapterLoadError(f"--adapter {spec!r}: file {where} does not exist")
        mod_name = f"nnspec_user_adapter_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            raise AdapterLoadError(
                f"--adapter {spec!r}: importing {where} failed: {_one_line(exc)}"
            ) from None
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as exc:
            raise AdapterLoadError(f"--adapter {spec!r}: no module named {exc.name!r}") from None
        except Exception as exc:
            raise AdapterLoadError(
                f"--adapter {spec!r}: importing {where} failed: {_one_line(exc)}"
            ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise AdapterLoadError(f"--adapter {spec!r}: {where} has no attribute {attr!r}") from None


def _instantiate(spec: str, target: object) -> Adapter:
    if isinstance(target, type):
        if not issubclass(target, Adapter) and not _looks_like_adapter(target):
            raise AdapterLoadError(
                f"--adapter {spec!r}: {target.__name__} is not an nnspec adapter"
            )
        try:
            target = target()
        except Exception as exc:
            raise AdapterLoadError(
                f"--adapter {spec!r}: constructing it failed: {_one_line(exc)}"
            ) from None
    if not _looks_like_adapter(target):
        raise AdapterLoadError(
            f"--adapter {spec!r}: {type(target).__name__} is not an nnspec adapter "
            "(needs a str 'name', a 'dtypes' tuple and an 'unavailable()' method)"
        )
    return target


def _looks_like_adapter(obj: object) -> bool:
    return (
        isinstance(getattr(obj, "name", None), str)
        and isinstance(getattr(obj, "dtypes", None), tuple | list)
        and callable(getattr(obj, "unavailable", None))
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def load(spec: str) -> Adapter:
    """An adapter from 'path.py:Attr', 'module.sub:Attr', a built-in name, or the name of an
    entry point in the nnspec.adapters group (an installed adapter package)."""
    if spec in BUILTINS:
        spec = BUILTINS[spec]
    elif ":" not in spec:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=spec):
            spec = ep.value
            break
        else:
            known = ", ".join([*BUILTINS, *_entry_point_names()])
            raise AdapterLoadError(
                f"--adapter {spec!r}: not a built-in or installed adapter name ({known}); "
                "or give 'path/to/file.py:Attr' or 'package.module:Attr'"
            )
    return _instantiate(spec, _import_target(spec))


def _entry_point_names() -> list[str]:
    return sorted(ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def entry_point_adapters() -> list[tuple[str, Adapter]]:
    """(spec, adapter) for every adapter installed under the nnspec.adapters group."""
    return [
        (ep.value, load(ep.value))
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    ]


def builtin_adapters() -> list[Adapter]:
    return [load(spec) for spec in BUILTINS.values()]
