"""A scripted model that is a real transformers model, so tests of budget forcing run on the engine's
production path (shared prefill, row compaction, cache cuts and copies, answers inside the round) and
still decide every next token from the row's whole text.

`ScriptedLM` is a `PreTrainedModel` + `GenerationMixin` with one cache layer whose keys are the token ids
themselves (exact in fp32): whatever the engine does to the KV cache (cut rows, copy a row for a fork,
stack groups, drop finished rows), the forward reads back each row's tokens (the attention mask says which
columns are real) and puts all probability on `script(tokens)`. Greedy and sampled decoding pick the same
token. A script may return None where its next token is undefined (a prefill position whose prediction
nobody reads, e.g. a prompt without its last token): token 0 then. Not for training (the logits are
constant)."""
from __future__ import annotations

import torch
from torch import nn
from transformers import GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers.cache_utils import DynamicCache
from transformers.modeling_outputs import CausalLMOutputWithPast

from rzoo.harness.models.hf_compat import with_cache


class ScriptConfig(PretrainedConfig):
    model_type = "rzoo_test_scripted"

    def __init__(self, vocab_size: int = 2, **kwargs):
        self.vocab_size = vocab_size
        self.hidden_size, self.num_hidden_layers, self.num_attention_heads, self.num_key_value_heads = 1, 1, 1, 1
        super().__init__(**kwargs)


class ScriptedLM(PreTrainedModel, GenerationMixin):
    config_class = ScriptConfig

    def __init__(self, config: ScriptConfig, script=None):
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, 1)  # a parameter, for dtype / device / FLOPs questions
        self.script = script  # list of the row's token ids so far -> the next token id
        self.forwards = 0  # forward calls (tests that want to see the engine's own loop ran)
        self.post_init()

    @classmethod
    def of(cls, tokenizer, script) -> "ScriptedLM":
        config = ScriptConfig(vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id,
                              pad_token_id=tokenizer.pad_token_id)
        return cls(config, script).eval()

    def get_input_embeddings(self):
        return self.embed

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, cache=None,
                use_cache=None, logits_to_keep=0, **kwargs):
        self.forwards += 1
        cache = cache if cache is not None else past_key_values
        cache = cache if cache is not None else DynamicCache(config=self.config)
        B, t = input_ids.shape
        ids = input_ids.to(torch.float32)[:, None, :, None]  # (B, 1, t, 1): the ids are the keys
        keys, _ = cache.update(ids, ids, 0)
        history = keys[:, 0, :, 0].round().long().tolist()  # (B, L) every cached column
        L = len(history[0])
        mask = (attention_mask[:, -L:] if attention_mask is not None else torch.ones(B, L)).tolist()
        n = min(int(logits_to_keep), t) if logits_to_keep else t
        logits = torch.full((B, n, self.config.vocab_size), float("-inf"))
        for b in range(B):
            real = [x for x, m in zip(history[b], mask[b]) if m]
            for j in range(n):  # output j predicts the token after the (t - n + j)-th fed column
                upto = len(real) - (n - 1 - j)
                nxt = self.script(real[:upto])
                logits[b, j, 0 if nxt is None else nxt] = 0.0
        return CausalLMOutputWithPast(logits=logits, **with_cache(cache if use_cache or use_cache is None else None))
