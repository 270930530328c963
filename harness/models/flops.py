"""Estimated inference FLOPs per sample, so that methods which spend compute without tokens (latent
recurrence) can share an x-axis with the thinking-token ones.

Per token at context length t, a decoder's forward pass costs (Kaplan et al. 2020, Table 1)

    2 * N + 2 * n_layer * t * d_model

where N counts the matmul parameters (every layer's weights plus the output head; the input
embedding is a lookup, not a matmul) and the second term is attention (QK^T and AV over t
positions). With a KV cache each token is computed once, so a sample with a prompt of P tokens and
G generated tokens costs

    sum_{t=1}^{P+G} (2N + 2 n_layer t d)  =  2N (P+G) + n_layer d (P+G)(P+G+1)

Prefill and decode are counted the same (the FLOPs are, the wall time is not). Re-prefills across
budget-forcing rounds are not counted: this is the model's compute for the sample, not the
harness's.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    matmul_params: int  # N: all parameters that multiply activations (embedding lookup excluded)
    n_layer: int
    d_model: int


def shape_of(model) -> Shape:
    """Read the shape from a transformers causal LM (tied or untied head), or take an engine's own."""
    config = model.config
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    head_tied = bool(getattr(config, "tie_word_embeddings", False))
    # tied: the head's matmul uses the embedding matrix, so count it once; untied: the head is its own
    # parameter and the input embedding is a lookup
    matmul = total if head_tied else total - embedding
    return Shape(matmul, config.num_hidden_layers, config.hidden_size)


def sample_flops(shape: Shape, prompt_tokens: int, generated_tokens: int) -> float:
    n = prompt_tokens + generated_tokens
    return 2.0 * shape.matmul_params * n + shape.n_layer * shape.d_model * n * (n + 1)
