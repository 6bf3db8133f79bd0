"""Attention for decoding: a plain float32 computation for a few query tokens, torch's SDPA otherwise.

torch's CPU flash-attention kernel, which transformers' "sdpa" setting uses,
spends about 1.4 ms per layer on a single query token against 560 cached ones
(it is built for long queries); two small matrix products and a softmax take
0.12 ms. With 28 layers that is 35 ms of every decoded token. Prefill (many
query tokens) keeps SDPA. Registered with transformers under `NAME`.
"""

from __future__ import annotations

import torch

NAME = "rag_decode_sdpa"
MAX_SMALL_QUERY = 16  # query tokens per call up to which the plain computation is faster here


def attention_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                      **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' attention contract: query (b, heads, q, d), key/value (b, kv_heads, kv, d) -> (b, q, heads, d)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, heads, q_len, dim = query.shape
    if q_len > MAX_SMALL_QUERY or batch != 1 or dropout or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    kv_heads, kv_len = key.shape[1], key.shape[2]
    group = heads // kv_heads
    scale = scaling if scaling is not None else dim ** -0.5
    # Query heads i*group .. i*group+group-1 share key/value head i (grouped-query
    # attention): fold them into rows so no key or value is copied per head.
    q = query.reshape(batch, kv_heads, group * q_len, dim).float()
    scores = torch.matmul(q, key.float().transpose(-1, -2)).mul_(scale).view(batch, kv_heads, group, q_len, kv_len)
    if attention_mask is not None:
        mask = attention_mask[:, :, -q_len:, -kv_len:].unsqueeze(1)  # (b, 1, 1 or q, ...) over kv heads and group
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask.float()
    elif q_len > 1:
        # No mask given means causal: query i sees the cache and itself, not the tokens after it.
        allowed = torch.ones(q_len, kv_len, dtype=torch.bool).tril(kv_len - q_len)
        scores = scores.masked_fill(~allowed, float("-inf"))
    probs = torch.softmax(scores, dim=-1).view(batch, kv_heads, group * q_len, kv_len)
    out = torch.matmul(probs, value.float()).view(batch, heads, q_len, dim)
    return out.transpose(1, 2).contiguous().to(query.dtype), None


def register() -> str:
    """Make `NAME` known to transformers (attention and its mask, the same as SDPA's); returns NAME."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, attention_forward)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME
