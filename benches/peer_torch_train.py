"""The PyTorch peer of `cargo bench --bench train`: the same weights (candor-nli-minilm with a new
3-way head), the same 128 pairs (the same rows of ../shared/data), the same batches (cut at 256 tokens,
length-sorted, 32 a batch, padded to the batch's longest), dropout 0.1 on hidden states and none on
attention, AdamW at 3e-5 with gradient clipping at 1.0: one pass over the 4 batches is one run. Prints
the median of RUNS runs (default 5) after a warm-up, in seconds and examples/s.

    python3 benches/peer_torch_train.py MODEL_DIR [DATA_DIR] [THREADS] [RUNS]

Needs torch, transformers and tokenizers; a measuring aid, not part of the build or the tests.
"""
import json, os, statistics, sys

import torch

import peer_data
from peer_data import text
from tokenizers import Tokenizer
from transformers import BertConfig, BertForSequenceClassification

model_dir = sys.argv[1]
data = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "../../shared/data")
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 5
torch.set_num_threads(threads)
torch.manual_seed(7)


def rows(rel, n):
    return peer_data.rows(data, rel, n)


pairs = [(text(r["premise"]), text(r["hypothesis"])) for r in rows("nli/snli-dev.jsonl", 32)]
for f in ["grounding/halueval-qa.jsonl", "grounding/factcheckgpt-stance.jsonl", "grounding/wice-dev.jsonl"]:
    pairs += [(text(r["evidence"]), text(r["claim"])) for r in rows(f, 32)]

tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
tok.no_padding()
tok.enable_truncation(256, strategy="longest_first")
enc = tok.encode_batch(pairs)
order = sorted(range(len(enc)), key=lambda i: len(enc[i].ids))
batches = []
for b0 in range(0, len(order), 32):
    chunk = [enc[i] for i in order[b0:b0 + 32]]
    longest = max(len(e.ids) for e in chunk)
    pad = lambda xs: xs + [0] * (longest - len(xs))
    ids = torch.tensor([pad(e.ids) for e in chunk])
    types = torch.tensor([pad(e.type_ids) for e in chunk])
    mask = torch.tensor([pad([1] * len(e.ids)) for e in chunk])
    labels = torch.tensor([(b0 + i) % 3 for i in range(len(chunk))])
    batches.append((ids, types, mask, labels))
tokens = sum(len(e.ids) for e in enc)
padded = sum(b[0].numel() for b in batches)
print(f"{len(pairs)} pairs in {len(batches)} batches: {tokens} tokens (mean {tokens / len(pairs):.0f}), {padded} padded", flush=True)

cfg = BertConfig.from_pretrained(model_dir)
cfg.num_labels = 3
cfg.hidden_dropout_prob = 0.1
cfg.attention_probs_dropout_prob = 0.0
# f32, as candor trains (transformers 5 would otherwise keep the checkpoint's f16, which the CPU
# multiplies an order of magnitude slower).
model = BertForSequenceClassification.from_pretrained(model_dir, config=cfg, ignore_mismatched_sizes=True, dtype=torch.float32)
assert next(model.parameters()).dtype == torch.float32
model.train()
decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=3e-5, eps=1e-6)


def one_pass():
    for ids, types, mask, labels in batches:
        out = model(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)


one_pass()
times = peer_data.passes(one_pass, runs)
med = statistics.median(times)
print(f"PyTorch {torch.__version__} train, {threads} threads: median {med:.3f} s over {runs} runs ({len(pairs) / med:.1f} examples/s); runs: {[round(x, 3) for x in times]}")
