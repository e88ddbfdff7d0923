#!/usr/bin/env python3
"""The Python stack's LoRA training step, timed: the baseline of qlora4j's side-by-side benchmark (issue 20).

Two stacks. --stack transformers (the default where transformers and PEFT import) trains transformers'
LlamaForCausalLM (float32, random weights, its default attention) with PEFT's LoRA on every projection under
transformers' Trainer as LLaMA-Factory sets it up: gradient checkpointing re-entrant with enable_input_require_grads,
adamw_torch, a cosine schedule, gradient clipping at 1.0, LoRA dropout 0; each step is timed from the Trainer's
on_step_begin to its on_step_end (forward, backward, clipping, optimizer, schedule, zeroing).

--stack torch (where only torch is at hand) computes what that model computes, written against plain PyTorch: a
float32 base whose weights are frozen, LoRA A and B on q, k, v, o, gate, up and down (alpha / r scaling, B starting
at zero), each decoder layer recomputed (torch.utils.checkpoint, re-entrant, the first layer's input made to require
a gradient), every position's logits in float32 and the mean cross-entropy of the shifted labels, then
torch.optim.AdamW over the adapters and set_to_none zeroing. It differs from the Trainer's step in the Python
stack's favour: no gradient clipping, no schedule, no Trainer around it; and its attention is the eager kind
(scores, float32 softmax, product), which transformers uses only where torch lacks scaled_dot_product_attention.

Prints result.key=value lines, the protocol of qlora4j's benchmark children: stepUs (median step after the warm-up),
hwm (peak resident set of this process, bytes), peakMflops (one 2048^3 float32 matmul, median of 5, the accounting
qlora4j's benchmarks divide by) and modelBytes (the model's parameters). Everything else goes to stderr. Where
QLORA4J_BENCH_PACED=1 the timed steps are paced by the parent: before each, and once after the last, the script
prints pace.ready and waits for a line on stdin (or its end); after each it prints pace.stepUs=<microseconds>.
"""
import argparse
import math
import os
import resource
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(prog="torch_lora_step.py", description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--intermediate", type=int, default=2048)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--kv-heads", type=int, default=None, help="default: --heads")
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--rope-theta", type=float, default=10000.0)
    p.add_argument("--rms-eps", type=float, default=1e-6)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--alpha", type=float, default=32.0)
    p.add_argument("--recompute", choices=["full", "none"], default="full")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--stack", choices=["transformers", "torch"], default=None,
                   help="default: transformers where transformers and peft import, else torch")
    return p.parse_args()


PACED = os.environ.get("QLORA4J_BENCH_PACED") == "1"


def await_turn():
    """Where the parent paces the timed steps, says so and waits for its word."""
    if PACED:
        print("pace.ready", flush=True)
        sys.stdin.readline()


def step_taken(seconds):
    """Where the parent paces the timed steps, reports the one just taken."""
    if PACED:
        print(f"pace.stepUs={round(seconds * 1e6)}", flush=True)


def build(torch, a):
    """The model and its LoRA parameters, as modules, in float32."""
    nn = torch.nn
    head_dim = a.hidden // a.heads
    kv_heads = a.kv_heads or a.heads

    class RmsNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(a.hidden), requires_grad=False)

        def forward(self, x):
            variance = x.pow(2).mean(-1, keepdim=True)
            return self.weight * (x * torch.rsqrt(variance + a.rms_eps))

    class Lora(nn.Module):
        """PEFT's Linear: base(x) + B(A(x)) * alpha / r, the base frozen, B starting at zero."""

        def __init__(self, fan_in, fan_out):
            super().__init__()
            self.base = nn.Linear(fan_in, fan_out, bias=False)
            self.base.weight.requires_grad_(False)
            self.lora_a = nn.Linear(fan_in, a.rank, bias=False)
            self.lora_b = nn.Linear(a.rank, fan_out, bias=False)
            nn.init.kaiming_uniform_(self.lora_a.weight, a=math.sqrt(5))
            nn.init.zeros_(self.lora_b.weight)
            self.scaling = a.alpha / a.rank

        def forward(self, x):
            return self.base(x) + self.lora_b(self.lora_a(x)) * self.scaling

    def rotate_half(x):
        half = x.shape[-1] // 2
        return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_norm = RmsNorm()
            self.post_norm = RmsNorm()
            self.q = Lora(a.hidden, a.heads * head_dim)
            self.k = Lora(a.hidden, kv_heads * head_dim)
            self.v = Lora(a.hidden, kv_heads * head_dim)
            self.o = Lora(a.heads * head_dim, a.hidden)
            self.gate = Lora(a.hidden, a.intermediate)
            self.up = Lora(a.hidden, a.intermediate)
            self.down = Lora(a.intermediate, a.hidden)

        def forward(self, h, mask, cos, sin):
            b, s, _ = h.shape
            x = self.input_norm(h)
            q = self.q(x).view(b, s, a.heads, head_dim).transpose(1, 2)
            k = self.k(x).view(b, s, kv_heads, head_dim).transpose(1, 2)
            v = self.v(x).view(b, s, kv_heads, head_dim).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if kv_heads != a.heads:
                k = k.repeat_interleave(a.heads // kv_heads, dim=1)
                v = v.repeat_interleave(a.heads // kv_heads, dim=1)
            scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(head_dim) + mask
            probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
            attn = torch.matmul(probs, v).transpose(1, 2).reshape(b, s, a.heads * head_dim)
            h = h + self.o(attn)
            x = self.post_norm(h)
            return h + self.down(torch.nn.functional.silu(self.gate(x)) * self.up(x))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(a.vocab, a.hidden)
            self.embed.weight.requires_grad_(False)
            self.layers = nn.ModuleList(Layer() for _ in range(a.layers))
            self.norm = RmsNorm()
            self.lm_head = nn.Linear(a.hidden, a.vocab, bias=False)
            self.lm_head.weight.requires_grad_(False)

        def forward(self, ids):
            b, s = ids.shape
            h = self.embed(ids)
            if a.recompute == "full":
                h.requires_grad_(True)
            inv_freq = 1.0 / (a.rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
            freqs = torch.arange(s, dtype=torch.float32)[:, None] * inv_freq[None, :]
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos(), emb.sin()
            mask = torch.full((s, s), torch.finfo(torch.float32).min).triu(1)
            for layer in self.layers:
                if a.recompute == "full":
                    h = torch.utils.checkpoint.checkpoint(layer, h, mask, cos, sin, use_reentrant=True)
                else:
                    h = layer(h, mask, cos, sin)
            logits = self.lm_head(self.norm(h)).float()
            return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, a.vocab), ids[:, 1:].reshape(-1))

    return Model()


def train_transformers(torch, a):
    """Trains transformers' Llama with PEFT's LoRA under the Trainer; returns the model and the timed steps (s)."""
    import tempfile
    import peft
    import transformers

    config = transformers.LlamaConfig(
        vocab_size=a.vocab, hidden_size=a.hidden, intermediate_size=a.intermediate, num_hidden_layers=a.layers,
        num_attention_heads=a.heads, num_key_value_heads=a.kv_heads or a.heads, rms_norm_eps=a.rms_eps,
        rope_theta=a.rope_theta, max_position_embeddings=max(2048, a.seq), tie_word_embeddings=False,
        use_cache=False)
    model = transformers.LlamaForCausalLM(config)
    if a.recompute == "full":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
        model.enable_input_require_grads()
    model = peft.get_peft_model(model, peft.LoraConfig(
        r=a.rank, lora_alpha=a.alpha, lora_dropout=0.0, task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    ids = torch.randint(0, a.vocab, (a.batch * (a.warmup + a.steps), a.seq))

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return len(ids)

        def __getitem__(self, i):
            return {"input_ids": ids[i], "attention_mask": torch.ones_like(ids[i]), "labels": ids[i]}

    times = []

    class Timer(transformers.TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step >= a.warmup:
                await_turn()
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.start)
            if len(times) > a.warmup:
                step_taken(times[-1])

    print(f"transformers {transformers.__version__}, peft {peft.__version__}, attention "
          f"{model.config._attn_implementation}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as out:
        args = transformers.TrainingArguments(
            output_dir=out, per_device_train_batch_size=a.batch, max_steps=a.warmup + a.steps, learning_rate=1e-4,
            lr_scheduler_type="cosine", optim="adamw_torch", max_grad_norm=1.0, logging_strategy="no",
            save_strategy="no", report_to=[], dataloader_num_workers=0, remove_unused_columns=False,
            dataloader_pin_memory=False, disable_tqdm=True, seed=0)
        transformers.Trainer(model=model, args=args, train_dataset=Rows(), callbacks=[Timer()]).train()
    return model, times[a.warmup:]


def train_torch(torch, a):
    """Trains the plain-PyTorch model of build(); returns the model and the timed steps (s)."""
    model = build(torch, a)
    adapters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(adapters, lr=1e-4)
    ids = torch.randint(0, a.vocab, (a.batch, a.seq))
    times = []
    for i in range(a.warmup + a.steps):
        if i >= a.warmup:
            await_turn()
        start = time.perf_counter()
        model(ids).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= a.warmup:
            times.append(time.perf_counter() - start)
            step_taken(times[-1])
    return model, times


def matmul_peak_mflops(torch):
    """One 2048^3 float32 product, a warm-up and the median of 5, in MFLOP/s."""
    m = torch.randn(2048, 2048)
    torch.matmul(m, m)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        torch.matmul(m, m)
        times.append(time.perf_counter() - start)
    return 2.0 * 2048 ** 3 / statistics.median(times) / 1e6


def main():
    a = parse_args()
    try:
        import torch
        import torch.utils.checkpoint
    except ImportError:
        print(f"torch_lora_step.py: PyTorch is not importable by {sys.executable}; install torch for it"
              " (pip install torch, or Debian's python3-torch with an optimized BLAS)", file=sys.stderr)
        sys.exit(2)
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    if a.stack is None:
        try:
            import peft  # noqa: F401
            import transformers  # noqa: F401
            a.stack = "transformers"
        except ImportError:
            a.stack = "torch"
    print(f"torch {torch.__version__}, {a.threads} threads, stack {a.stack}", file=sys.stderr)
    model, times = (train_transformers if a.stack == "transformers" else train_torch)(torch, a)
    await_turn()
    hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    print(f"result.stepUs={round(statistics.median(times) * 1e6)}")
    print(f"result.hwm={hwm}")
    print(f"result.modelBytes={model_bytes}")
    print(f"result.peakMflops={round(matmul_peak_mflops(torch))}")


if __name__ == "__main__":
    main()
