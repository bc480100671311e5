"""HF transformers decoding ops (merged into conformance.adapters.hf.HF_OPS): a tiny GPT-2
(GPT2LMHeadModel from a GPT2Config: vocabulary 16, 1 layer, 2 heads, width 16; random weights
from torch.manual_seed(model) on the CPU, no hub download) and its own generate().

    lm_next_logits(tokens, model=0, dtype) -> (B, 16) logits of the next token (the model's
        forward on the whole prefix, no cache): the step function the reference decoder uses.
    lm_generate_greedy(prompt, max_new_tokens, eos=None, pad=None, model=0, dtype)
        generate(do_sample=False) (its default KV cache), the new tokens only.
    lm_generate_sample(prompt, max_new_tokens, temperature=1.0, top_k=None, eos=None, pad=None,
        model=0, seed=0, dtype) generate(do_sample=True, temperature, top_k (0 = off: GPT-2's
        generation default would be 50), top_p=1.0) after torch.manual_seed(seed).
EOS: eos_token_id=eos and pad_token_id=pad (EOS when None), which generate() writes after a
row's EOS, stopping when every row is done: nnspec's rule. With eos None no EOS id is given.
"""

from __future__ import annotations

import functools

VOCAB = 16  # reference.language.SEEDED_VOCAB


@functools.cache
def _gpt2(model: int, dtype):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=32,
        n_embd=16,
        n_layer=1,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=None,
        pad_token_id=None,
    )
    with torch.random.fork_rng():
        torch.manual_seed(model)
        lm = GPT2LMHeadModel(config)
    return lm.to(dtype=dtype).eval()


def _dtype(name: str):
    import torch

    return getattr(torch, str(name))


def lm_next_logits(tokens, model=0, dtype="float64"):
    import torch

    lm = _gpt2(int(model), _dtype(dtype))
    with torch.no_grad():
        return lm(input_ids=tokens, use_cache=False).logits[:, -1]


def _generate(prompt, max_new_tokens, eos, pad, model, dtype, **sampling):
    import torch

    lm = _gpt2(int(model), _dtype(dtype))
    pad_id = eos if pad is None else pad
    with torch.no_grad():
        out = lm.generate(
            input_ids=prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=int(max_new_tokens),
            min_new_tokens=0,
            num_beams=1,
            eos_token_id=None if eos is None else int(eos),
            pad_token_id=0 if pad_id is None else int(pad_id),
            **sampling,
        )
    return out[:, prompt.shape[1] :]


def lm_generate_greedy(prompt, max_new_tokens, eos=None, pad=None, model=0, dtype="float64"):
    return _generate(prompt, max_new_tokens, eos, pad, model, dtype, do_sample=False)


def lm_generate_sample(
    prompt,
    max_new_tokens,
    temperature=1.0,
    top_k=None,
    eos=None,
    pad=None,
    model=0,
    seed=0,
    dtype="float64",
):
    import torch

    torch.manual_seed(int(seed))
    return _generate(
        prompt,
        max_new_tokens,
        eos,
        pad,
        model,
        dtype,
        do_sample=True,
        temperature=float(temperature),
        top_k=0 if top_k is None else int(top_k),
        top_p=1.0,
    )


OPS = {
    "lm_next_logits": lm_next_logits,
    "lm_generate_greedy": lm_generate_greedy,
    "lm_generate_sample": lm_generate_sample,
}
