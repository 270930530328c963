"""A recurrent-depth language model (Geiping et al. 2025, "Scaling up Test-Time Compute with Latent
Reasoning: A Recurrent Depth Approach"; seal-rg/recurrent-pretraining, "Huginn"), as a transformers
`PreTrainedModel`:

    e   = P(embed(x))                         prelude: n_prelude blocks
    s_0 ~ N(0, state_std^2)                   noise, per token (at inference a fixed draw per position)
    s_i = R(A([s_{i-1}; e]))   i = 1..r       recurrent core: an adapter A (2h -> h) and n_core blocks,
                                              the prelude's output e injected at every step
    p   = softmax(head(norm(C(s_r))))         coda: n_coda blocks, then the head

Blocks are Llama decoder layers (RMSNorm, RoPE attention, SwiGLU MLP). Test-time compute is r, the
number of core iterations: `num_steps` is a forward / `generate` argument (default: the config's
`mean_recurrence`).

- Training (`model.train()`, no `num_steps`): r is sampled per forward, tau ~ LogNormal(log r_bar -
  sigma^2/2, sigma), r = Poisson(tau) + 1 (sigma = 0.5), and gradients flow through the last
  k = min(backprop_depth, r) iterations only (the earlier ones run without autograd).
- Early exit (`exit_kl` > 0, inference): a token stops iterating once KL(p_{i-1} || p_i), the KL divergence
  from the previous iteration's output distribution to this one's (the reference's `F.kl_div(log p_i,
  log p_{i-1}, log_target=True)`), falls below `exit_kl`. Its state is frozen from then on. The config
  default is 0 (off); the reference's threshold is 1e-3 (seal-rg/recurrent-pretraining `KLExitEvaluator`,
  "auto"), 5e-4 in its first release and the paper.
- Attention window (`attention_window` w, default None: full causal attention as in Huginn): every block
  sees its token and the w - 1 before it, so r iterations see (n_prelude + r * n_core + n_coda) * (w - 1)
  tokens back and information from further back needs more iterations (tested). A departure used by the
  testbed preset: with full attention one pass can count a running sum's digits in parallel, and
  whether the trained model needs its iterations was left to the seed (docs/measurements.md).
- KV cache: one cache layer per prelude block, per (iteration, core block) and per coda block
  (`num_hidden_layers` counts them for `max_recurrence` iterations). A token that exited at iteration k
  offers its iteration-k keys and values to later iterations, in the cache and within a forward alike,
  so cached decoding equals a full forward (tested).
- `iterations` counts the core iterations actually run per token since the last `reset_iterations()`
  (early exit included), for FLOPs (`flops_shape_at`).

Registered with `AutoConfig` / `AutoModelForCausalLM` by `register()` (called by `models.load` and on
importing this module), so a checkpoint loads with `AutoModelForCausalLM.from_pretrained` without
`trust_remote_code`. vLLM does not run it (`eval.backend=hf`).

Departures from Huginn (seal-rg/recurrent-pretraining @59e0b69, `recpre/raven_modeling_minimal.py`), on purpose:
- Llama blocks instead of its sandwich-normed blocks, and no normalisation of the state before the coda
  (Huginn applies `ln_f` to the latent state before the coda, and again before the head): the testbed model
  was trained without it, and adding it is a new architecture;
- the initial state's noise is not truncated at +-3 sigma (Huginn's `trunc_normal_`): 0.27% of draws lie beyond,
  and the measured testbed preset was trained with untruncated noise;
- the exit is decided per token, prompt tokens included (each prompt position exits on its own
  distributions), where Huginn decides per sequence on its last position and exits all prompt positions
  together; and the first check compares iterations 1 and 2 (Huginn's first compares iteration 1 with the
  uniform distribution, which practically never exits);
- during training the sampled r is capped at `max_recurrence`; the optional attention window above.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from transformers import GenerationMixin, LlamaConfig, PretrainedConfig, PreTrainedModel
from transformers.cache_utils import DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRMSNorm, LlamaRotaryEmbedding

from .hf_compat import with_cache

MODEL_TYPE = "rzoo_recurrent"


class RecurrentConfig(PretrainedConfig):
    model_type = MODEL_TYPE

    def __init__(self, vocab_size: int = 128, hidden_size: int = 128, intermediate_size: int = 384,
                 num_attention_heads: int = 4, n_prelude: int = 1, n_core: int = 2, n_coda: int = 1,
                 mean_recurrence: int = 8, max_recurrence: int = 64, recurrence_sigma: float = 0.5,
                 backprop_depth: int = 8, state_std: float | None = None, exit_kl: float = 0.0, noise_seed: int = 0,
                 attention_window: int | None = None,
                 max_position_embeddings: int = 256, rope_theta: float = 30.0, rms_norm_eps: float = 1e-6,
                 tie_word_embeddings: bool = True, **kwargs):
        self.vocab_size, self.hidden_size, self.intermediate_size = vocab_size, hidden_size, intermediate_size
        self.num_attention_heads, self.num_key_value_heads = num_attention_heads, num_attention_heads
        self.n_prelude, self.n_core, self.n_coda = n_prelude, n_core, n_coda
        self.mean_recurrence, self.max_recurrence = mean_recurrence, max_recurrence
        self.recurrence_sigma, self.backprop_depth, self.state_std = recurrence_sigma, backprop_depth, state_std
        self.exit_kl, self.noise_seed = exit_kl, noise_seed
        if attention_window is not None and (not isinstance(attention_window, int) or attention_window < 1):
            raise ValueError(f"attention_window must be a positive number of tokens or None, not {attention_window!r}")
        self.attention_window = attention_window
        self.max_position_embeddings, self.rope_theta, self.rms_norm_eps = max_position_embeddings, rope_theta, rms_norm_eps
        # cache layers: prelude, each (iteration, core block) up to max_recurrence, coda
        self.num_hidden_layers = n_prelude + max_recurrence * n_core + n_coda
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)

    def initial_state_std(self) -> float:
        """The initial state's noise scale: `state_std`, or Huginn's sqrt(2 / (5 h)) when unset (0.056 at h = 128).
        Huginn multiplies it by its embedding scale sqrt(h), as it does its embeddings; ours are unscaled (std
        0.02 at initialisation). The scale matters on the testbed; what was tried, and how it trained, is in
        docs/measurements.md ("Latent recurrence")."""
        return self.state_std if self.state_std is not None else math.sqrt(2 / (5 * self.hidden_size))

    def block_config(self) -> LlamaConfig:
        config = LlamaConfig(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                             intermediate_size=self.intermediate_size, num_attention_heads=self.num_attention_heads,
                             num_key_value_heads=self.num_key_value_heads, num_hidden_layers=1,
                             max_position_embeddings=self.max_position_embeddings, rope_theta=self.rope_theta,
                             rms_norm_eps=self.rms_norm_eps)
        config._attn_implementation = self._attn_implementation or "sdpa"
        return config


def _token_window(window: int, attention_mask, batch: int, length: int, device):
    """A mask function (transformers' `and_mask_function`) keeping the keys among a query's last `window` real
    tokens, itself included. Counted in tokens, not columns: a batch's layout puts masked columns between a row's
    tokens (left padding, and in a continued round the holes and suffix padding of `HFChunk.continue_rows`), and a
    window over columns would see fewer of that row's tokens than the same row alone (the latent model's answers
    then depended on the batch size). attention_mask: (B, length) over cached + new columns, or None (no padding)."""
    import torch

    if attention_mask is None or attention_mask.dim() != 2:
        position = torch.arange(length, device=device).expand(batch, length)
    else:  # (B, length): each column's index among its row's real tokens (a masked column repeats the previous)
        position = attention_mask.long().cumsum(-1) - 1

    def inner(batch_idx, head_idx, q_idx, kv_idx):
        return position[batch_idx, q_idx] - position[batch_idx, kv_idx] < window

    return inner


class _LayerView:
    """What a block's attention sees as its cache: one layer of the model's cache, and the keys/values of
    tokens that exited earlier (their iteration-k entries) in place of freshly computed ones."""

    def __init__(self, cache: DynamicCache, index: int, frozen: dict | None = None, exited=None):
        self.cache, self.index, self.frozen, self.exited = cache, index, frozen, exited

    def update(self, keys, values, layer_idx=None, *args, **kwargs):
        if self.frozen is not None and self.exited is not None and self.exited.any():
            mask = self.exited[:, None, :, None]  # (B, 1, T, 1) over (B, heads, T, head_dim)
            keys = torch.where(mask, self.frozen["k"], keys)
            values = torch.where(mask, self.frozen["v"], values)
        if self.frozen is not None:
            self.frozen["last"] = (keys, values)
        return self.cache.update(keys, values, self.index)


class RecurrentForCausalLM(PreTrainedModel, GenerationMixin):
    config_class = RecurrentConfig
    base_model_prefix = "model"
    supports_recurrence = True  # the latent method's test-time knob sets `num_steps` (methods/latent.py)
    _supports_sdpa = True
    _tied_weights_keys = {"lm_head.weight": "embed_tokens.weight"}

    def __init__(self, config: RecurrentConfig):
        super().__init__(config)
        block = config.block_config()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.prelude = nn.ModuleList(LlamaDecoderLayer(block, i) for i in range(config.n_prelude))
        self.adapter = nn.Linear(2 * config.hidden_size, config.hidden_size, bias=False)
        self.core = nn.ModuleList(LlamaDecoderLayer(block, i) for i in range(config.n_core))
        self.coda = nn.ModuleList(LlamaDecoderLayer(block, i) for i in range(config.n_coda))
        self.norm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary = LlamaRotaryEmbedding(config=block)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.iterations = [0.0, 0.0]  # tokens, core iterations since reset_iterations()
        self._noise = None
        self.post_init()

    def init_noise(self, device) -> torch.Tensor:
        """Inference's initial state: one fixed draw per position, so cached decoding equals a full forward and
        evaluation is deterministic (training draws fresh noise). Made on first use (not a buffer: loading
        builds the model on the meta device)."""
        c = self.config
        if self._noise is None or self._noise.device != torch.device(device):
            g = torch.Generator().manual_seed(c.noise_seed)
            self._noise = torch.randn(c.max_position_embeddings, c.hidden_size, generator=g).to(device)
        return self._noise

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, value):
        self.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def reset_iterations(self) -> None:
        self.iterations = [0.0, 0.0]

    def mean_iterations(self) -> float | None:
        return self.iterations[1] / self.iterations[0] if self.iterations[0] else None

    # -- cache layout --------------------------------------------------------------------------------
    def _core_index(self, step: int, j: int) -> int:
        return self.config.n_prelude + step * self.config.n_core + j

    def _coda_index(self, j: int) -> int:
        return self.config.n_prelude + self.config.max_recurrence * self.config.n_core + j

    def sample_recurrence(self) -> int:
        """r for one training forward: tau ~ LogNormal(log r_bar - sigma^2/2, sigma), r = Poisson(tau) + 1."""
        c = self.config
        mu = math.log(c.mean_recurrence) - c.recurrence_sigma ** 2 / 2
        tau = torch.distributions.LogNormal(mu, c.recurrence_sigma).sample()
        return min(int(torch.poisson(tau)) + 1, c.max_recurrence)

    def _blocks(self, layers, h, mask, pos, cache, index, view_kwargs=None):
        for j, layer in enumerate(layers):
            view = _LayerView(cache, index(j), **(view_kwargs[j] if view_kwargs else {}))
            h = layer(h, attention_mask=mask, position_embeddings=pos, **with_cache(view))
        return h

    def _coda_logits(self, state, mask, pos, cache, keep: bool):
        """Logits of the coda on `state`; `keep=False` leaves the coda's cache as it was (an exit check)."""
        if keep:
            h = self._blocks(self.coda, state, mask, pos, cache, self._coda_index)
        else:
            lengths = [cache.layers[self._coda_index(j)].get_seq_length() if len(cache.layers) > self._coda_index(j)
                       else 0 for j in range(len(self.coda))]
            h = self._blocks(self.coda, state, mask, pos, cache, self._coda_index)
            for j, n in enumerate(lengths):
                layer = cache.layers[self._coda_index(j)]
                if n == 0:  # this check initialised the layer: empty it again
                    layer.keys, layer.values = layer.keys[..., :0, :], layer.values[..., :0, :]
                else:
                    layer.crop(n - layer.get_seq_length())
        return self.lm_head(self.norm(h))

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, logits_to_keep=0, num_steps: int | None = None,
                exit_kl: float | None = None, cache=None, **kwargs):
        # `cache` is what generate passes from transformers 5.24 on, `past_key_values` before (harness/hf_compat.py)
        c = self.config
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        cache = cache if cache is not None else past_key_values
        cache = cache if cache is not None else DynamicCache(config=c)
        if position_ids is None:
            past = cache.get_seq_length()
            position_ids = torch.arange(past, past + x.shape[1], device=x.device).unsqueeze(0)
        block = c.block_config()
        window = None
        if c.attention_window:  # every block sees itself and the attention_window - 1 tokens before it
            if block._attn_implementation.startswith("flash"):
                # flash kernels take no mask: the window would be dropped silently (not wired or tested here)
                raise ValueError(f"attention_window={c.attention_window} is applied through the attention mask; "
                                 f"{block._attn_implementation!r} takes none: load with attn_implementation='sdpa'")
            window = _token_window(c.attention_window, attention_mask, x.shape[0], cache.get_seq_length() + x.shape[1],
                                   x.device)
        mask = create_causal_mask(config=block, inputs_embeds=x, attention_mask=attention_mask,
                                  position_ids=position_ids, and_mask_function=window, **with_cache(cache))
        pos = self.rotary(x, position_ids=position_ids)
        e = self._blocks(self.prelude, x, mask, pos, cache, lambda j: j)
        r = num_steps or (self.sample_recurrence() if self.training else c.mean_recurrence)
        if r > c.max_recurrence:
            raise ValueError(f"num_steps={r} exceeds max_recurrence={c.max_recurrence}")
        threshold = c.exit_kl if exit_kl is None else exit_kl
        check = threshold > 0 and not self.training
        first_grad = r - min(c.backprop_depth, r) if self.training else r  # truncated backpropagation
        if self.training:
            noise = torch.randn_like(e)
        else:
            table = self.init_noise(e.device)
            noise = table[position_ids.clamp(max=len(table) - 1)]
        state = noise.to(e.dtype).expand_as(e) * c.initial_state_std()
        B, T = e.shape[:2]
        exited = torch.zeros(B, T, dtype=torch.bool, device=e.device)
        used = torch.zeros(B, T, device=e.device)
        frozen = [{"k": None, "v": None} for _ in self.core]
        previous = None
        for step in range(r):
            with torch.set_grad_enabled(torch.is_grad_enabled() and step >= first_grad):
                views = [{"frozen": f, "exited": exited if f["k"] is not None else None} for f in frozen]
                h = self.adapter(torch.cat([state, e], dim=-1))
                h = self._blocks(self.core, h, mask, pos, cache, lambda j, s=step: self._core_index(s, j), views)
                state = torch.where(exited[..., None], state, h)
                used = used + (~exited).float()
                for f in frozen:  # remember each token's latest own keys/values until it exits
                    k, v = f.pop("last")
                    k, v = k[:, :, -T:], v[:, :, -T:]
                    f["k"] = k if f["k"] is None else torch.where(exited[:, None, :, None], f["k"], k)
                    f["v"] = v if f["v"] is None else torch.where(exited[:, None, :, None], f["v"], v)
            if check and step < r - 1:
                logp = torch.log_softmax(self._coda_logits(state, mask, pos, cache, keep=False).float(), -1)
                if previous is not None:
                    kl = (previous.exp() * (previous - logp)).sum(-1)  # KL(p_{i-1} || p_i) per token, as Huginn
                    exited = exited | (kl < threshold)
                previous = logp
            if exited.all():
                # the remaining iterations' cache layers still get every token's frozen entries
                for rest in range(step + 1, r):
                    for j, f in enumerate(frozen):
                        cache.update(f["k"], f["v"], self._core_index(rest, j))
                break
        real = self._real_tokens(input_ids, attention_mask, B, T, e.device)
        self.iterations = [self.iterations[0] + float(real.sum()), self.iterations[1] + float((used * real).sum())]
        h = self._blocks(self.coda, state, mask, pos, cache, self._coda_index)
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) and logits_to_keep else slice(None)
        logits = self.lm_head(self.norm(h[:, keep]))
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=c.vocab_size, **kwargs)
        return CausalLMOutputWithPast(loss=loss, logits=logits, **with_cache(cache if use_cache else None))

    def _real_tokens(self, input_ids, attention_mask, B: int, T: int, device):
        """(B, T) 1 where a new column holds a real token, 0 for padding, the holes of a batch's layout and the
        pad tokens `generate` feeds to finished rows: the iterations count (FLOPs) covers real tokens only, so it
        does not depend on how a batch is laid out (with early exit, padding exits at its own iteration)."""
        real = torch.ones(B, T, device=device)
        if attention_mask is not None and attention_mask.dim() == 2:
            real = real * attention_mask[:, -T:].to(real.dtype)
        pad = self.config.pad_token_id
        if input_ids is not None and pad is not None and pad not in _as_set(self.config.eos_token_id):
            real = real * (input_ids != pad).to(real.dtype)
        return real

    def flops_shape_at(self, iterations: float):
        """The FLOPs shape (`harness/flops.py`) of a forward with `iterations` core iterations per token."""
        from .flops import Shape

        c = self.config
        per_block = sum(p.numel() for p in self.core[0].parameters())
        fixed = sum(p.numel() for m in (*self.prelude, *self.coda, self.lm_head) for p in m.parameters())
        core = per_block * len(self.core) + self.adapter.weight.numel()
        layers = c.n_prelude + c.n_coda + iterations * c.n_core
        return Shape(int(fixed + iterations * core), layers, c.hidden_size)


def _as_set(ids) -> set:
    return set(ids) if isinstance(ids, (list, tuple)) else {ids}


def register() -> None:
    """Make `AutoConfig` / `AutoModelForCausalLM` know the architecture (idempotent)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        AutoConfig.register(MODEL_TYPE, RecurrentConfig)
        AutoModelForCausalLM.register(RecurrentConfig, RecurrentForCausalLM)
    except ValueError:  # already registered
        pass


register()
