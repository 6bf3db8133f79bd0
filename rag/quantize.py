"""Decode-time weights: the GGUF's own 4-bit blocks, packed for torch's int4 matrix product.

Writing one token reads every weight once, so on a CPU the decode speed is
set by bytes of weights: 3.1 GB in bfloat16 for the 1.5B model. The GGUF
stores most matrices as Q4_K — 4-bit values with a scale and a minimum per 32
weights — which is exactly the form torch's `_weight_int4pack_mm_for_cpu`
computes with (value - 8) * scale + zero, so those matrices are repacked
without any new rounding beyond storing scale and zero in bfloat16. Prefill
(hundreds of tokens at once) keeps the bfloat16 weights, where oneDNN's
matrix products are 2-3x faster than the int4 kernel; `DualLinear` picks per
call. Building the packed file is `models.py`'s business; this module only
converts and attaches.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

GROUP_SIZE = 32  # Q4_K's sub-block: one scale and one minimum per 32 weights
FORMAT_VERSION = "2"  # 2: Q6_K matrices as int8 rows
# Above this many rows (tokens) per call the bfloat16 product is faster than
# the int4 kernel, which re-reads its weights for every 4 rows.
MAX_PACKED_ROWS = 8

# GGUF tensor names -> transformers' Qwen2 module names.
_BLOCK_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def module_name(gguf_name: str) -> str | None:
    """The transformers Linear module a GGUF weight belongs to, or None when it is not a Linear weight.

    >>> module_name("blk.3.ffn_down.weight")
    'model.layers.3.mlp.down_proj'
    """
    parts = gguf_name.split(".")
    if len(parts) == 4 and parts[0] == "blk" and parts[3] == "weight" and parts[2] in _BLOCK_NAMES:
        return f"model.layers.{parts[1]}.{_BLOCK_NAMES[parts[2]]}"
    return None


def q4k_to_groups(blocks: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split Q4_K blocks into (values uint8 0..15 [N, K], scale float32 [N, K/32], minimum float32 [N, K/32]).

    `blocks` is the raw uint8 data of one tensor, 144 bytes per 256 weights,
    row-major. A weight is scale * value - minimum, as in llama.cpp.
    """
    from gguf.quants import Q4_K

    raw = blocks.reshape(-1, 144)
    n_blocks = raw.shape[0]
    d = raw[:, 0:2].copy().view(np.float16).astype(np.float32)
    dmin = raw[:, 2:4].copy().view(np.float16).astype(np.float32)
    sc, mn = Q4_K.get_scale_min(raw[:, 4:16])
    scale = d * sc.astype(np.float32)  # (n_blocks, 8): one per 32 weights
    minimum = dmin * mn.astype(np.float32)
    qs = raw[:, 16:].reshape(n_blocks, 4, 1, 32) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)
    values = (qs & np.uint8(0x0F)).reshape(n_blocks, 256)
    return values.reshape(n_rows, -1), scale.reshape(n_rows, -1), minimum.reshape(n_rows, -1)


def pack_q4k(values: np.ndarray, scale: np.ndarray, minimum: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(packed weight, scales_and_zeros) for `_weight_int4pack_mm_for_cpu`.

    torch computes (value - 8) * s + z; llama.cpp scale * value - minimum; so
    s = scale and z = 8 * scale - minimum. The packed layout depends on the
    CPU capability torch runs with (64-wide blocks on AVX-512, 32 on AVX2).
    """
    n_rows = values.shape[0]
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(torch.from_numpy(values.astype(np.int32)), 1)
    s = torch.from_numpy(scale)
    z = torch.from_numpy(8 * scale - minimum)
    # (K/32, N, 2): the kernel reads scale and zero of one group for 64 output rows at a time.
    scales_and_zeros = torch.stack([s, z], dim=-1).transpose(0, 1).contiguous().to(torch.bfloat16)
    assert scales_and_zeros.shape[1] == n_rows
    return packed, scales_and_zeros


def to_int8_rows(weight: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 weight, bfloat16 scale per row) for `_weight_int8pack_mm`: weight ~= int8 * scale."""
    absmax = np.abs(weight).max(axis=1)
    scale = np.where(absmax > 0, absmax / 127, 1).astype(np.float32)
    values = np.clip(np.rint(weight / scale[:, None]), -127, 127).astype(np.int8)
    return torch.from_numpy(values), torch.from_numpy(scale).to(torch.bfloat16)


def convert_gguf(gguf: Path, progress: bool = False) -> dict[str, torch.Tensor]:
    """The Linear weights of `gguf` in decode form.

    Q4_K matrices become {"<module>.int4": packed, "<module>.sz": scales and
    zeros}, exactly. Q6_K matrices (the output head, and the value and down
    projections of half the layers) have no exact form among torch's kernels;
    they become {"<module>.int8": values, "<module>.scale": one scale per row},
    whose rounding step is below Q6_K's own for all but outlier rows.
    """
    from gguf import GGMLQuantizationType, GGUFReader
    from gguf.quants import dequantize
    from tqdm import tqdm

    reader = GGUFReader(str(gguf))
    tensors: dict[str, torch.Tensor] = {}
    for t in tqdm(reader.tensors, desc="packing decode weights", disable=not progress):
        name = "lm_head" if t.name == "output.weight" else module_name(t.name)
        if name is None:
            continue
        n_cols, n_rows = (int(x) for x in t.shape)  # GGUF lists the fastest-varying dimension first
        if t.tensor_type == GGMLQuantizationType.Q4_K:
            values, scale, minimum = q4k_to_groups(np.asarray(t.data), n_rows)
            assert values.shape == (n_rows, n_cols), (t.name, values.shape)
            tensors[f"{name}.int4"], tensors[f"{name}.sz"] = pack_q4k(values, scale, minimum)
        elif t.tensor_type == GGMLQuantizationType.Q6_K:
            weight = dequantize(np.asarray(t.data), t.tensor_type).reshape(n_rows, n_cols)
            tensors[f"{name}.int8"], tensors[f"{name}.scale"] = to_int8_rows(weight)
    return tensors


def file_metadata() -> dict[str, str]:
    """What a packed file must match to be usable: its format, torch's version and CPU capability."""
    return {"format": FORMAT_VERSION, "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


class DualLinear(torch.nn.Module):
    """A Linear layer that multiplies few rows with its packed decode weight and many with its bfloat16 one.

    Both hold the same matrix (int4: the GGUF's exact 4-bit form; int8: its
    6-bit form rounded once more; bfloat16: the dequantized copy), so the
    choice changes speed, and for int8 the last bits of the logits.
    """

    def __init__(self, linear: torch.nn.Linear, kind: str, data: torch.Tensor, scales: torch.Tensor) -> None:
        super().__init__()
        assert kind in ("int4", "int8")
        self.linear = linear
        self.kind = kind
        self.out_features = linear.out_features
        self.max_rows = MAX_PACKED_ROWS
        self.register_buffer("data", data, persistent=False)
        self.register_buffer("scales", scales, persistent=False)

    @property
    def weight(self) -> torch.Tensor:  # transformers reads .weight for dtype and device
        return self.linear.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        if rows > self.max_rows or x.dtype != torch.bfloat16:
            return self.linear(x)
        flat = x.reshape(rows, x.shape[-1])
        if self.kind == "int4":
            out = torch.ops.aten._weight_int4pack_mm_for_cpu(flat, self.data, GROUP_SIZE, self.scales)
        else:
            out = torch.ops.aten._weight_int8pack_mm(flat, self.data, self.scales)
        if self.linear.bias is not None:
            out = out + self.linear.bias
        return out.reshape(*x.shape[:-1], self.out_features)


def _aligned(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` in 64-byte aligned memory: the int8 kernel crashes (SIGSEGV) on a
    safetensors file's 8-byte aligned tensors once it multiplies 4 rows or more."""
    if tensor.data_ptr() % 64 == 0 and tensor.is_contiguous():
        return tensor
    return torch.empty(tensor.shape, dtype=tensor.dtype).copy_(tensor)


def attach(model: torch.nn.Module, tensors: dict[str, Any], kinds: tuple[str, ...] = ("int4", "int8")) -> int:
    """Swap each Linear named in `tensors` (of the given kinds) for a DualLinear; returns how many were swapped."""
    swapped = 0
    for key in tensors:
        name, _, kind = key.rpartition(".")
        if kind not in kinds:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        linear = getattr(parent, child)
        if isinstance(linear, DualLinear):
            continue
        data, scales = tensors[key], tensors[f"{name}.{'sz' if kind == 'int4' else 'scale'}"]
        rows = scales.shape[1] if kind == "int4" else scales.shape[0]
        cols = scales.shape[0] * GROUP_SIZE if kind == "int4" else data.shape[1]
        if (rows, cols) != (linear.out_features, linear.in_features):
            raise ValueError(f"decode weight of {name} is {rows}x{cols}, "
                             f"the model's is {linear.out_features}x{linear.in_features}")
        setattr(parent, child, DualLinear(linear, kind, _aligned(data), _aligned(scales)))
        swapped += 1
    return swapped
