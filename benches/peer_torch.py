"""The PyTorch peer of `cargo bench --bench engine`: the same inputs (the same rows of ../shared/data),
the same MiniLM weights, the same batching (length-sorted, cut by a budget of 4096 padded tokens, at
most 64 inputs a batch), on the CPU with the same number of threads. Prints the median of 10 runs.

    python benches/peer_torch.py MODEL_DIR [DATA_DIR] [THREADS]

MODEL_DIR is all-minilm-l6-v2's folder (`candor models path all-minilm-l6-v2`). Needs torch,
transformers and tokenizers; it is a measuring aid, not part of the build or the tests.
"""
import json, os, statistics, sys, time

import torch
from tokenizers import Tokenizer
from transformers import BertConfig, BertForSequenceClassification, BertModel

model_dir = sys.argv[1]
data = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "../../shared/data")
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
torch.set_num_threads(threads)


def rows(rel, n):
    lines = [l for l in open(os.path.join(data, rel)) if l.strip()]
    step = max(len(lines) // n, 1)
    return [json.loads(l) for l in lines[::step][:n]]


def text(v):
    return " ".join(v) if isinstance(v, list) else v


pairs = [(text(r["premise"]), text(r["hypothesis"])) for r in rows("nli/snli-dev.jsonl", 32)]
for f in ["grounding/halueval-qa.jsonl", "grounding/factcheckgpt-stance.jsonl", "grounding/wice-dev.jsonl"]:
    pairs += [(text(r["evidence"]), text(r["claim"])) for r in rows(f, 32)]
texts = []
for r in rows("similarity/stsb-test.jsonl", 64):
    texts += [r["a"], r["b"]]
texts += [r["claim"] for r in rows("grounding/halueval-qa.jsonl", 64)]
texts += [text(r["evidence"]) for r in rows("grounding/factcheckgpt-stance.jsonl", 64)]

tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
tok.no_padding()


def encode(items, max_len, pair):
    tok.enable_truncation(max_len)
    enc = tok.encode_batch(items) if not pair else tok.encode_batch([list(p) for p in items])
    return [(e.ids, e.type_ids) for e in enc]


def plan(lengths, budget=4096, max_batch=64):
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, cur = [], []
    for i in order:
        longest = lengths[cur[0]] if cur else lengths[i]
        if cur and ((len(cur) + 1) * longest > budget or len(cur) >= max_batch):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def tensors(encoded, idx):
    L = max(len(encoded[i][0]) for i in idx)
    ids = torch.zeros(len(idx), L, dtype=torch.long)
    types = torch.zeros(len(idx), L, dtype=torch.long)
    mask = torch.zeros(len(idx), L, dtype=torch.long)
    for r, i in enumerate(idx):
        n = len(encoded[i][0])
        ids[r, :n] = torch.tensor(encoded[i][0])
        types[r, :n] = torch.tensor(encoded[i][1])
        mask[r, :n] = 1
    return ids, types, mask


cfg = BertConfig.from_pretrained(model_dir)
cfg.num_labels = 3
ce = BertForSequenceClassification.from_pretrained(model_dir, config=cfg).eval()
emb = BertModel.from_pretrained(model_dir).eval()


def run_pairs():
    enc = encode(pairs, 512, True)
    for b in plan([len(e[0]) for e in enc]):
        ids, types, mask = tensors(enc, b)
        torch.softmax(ce(input_ids=ids, token_type_ids=types, attention_mask=mask).logits, -1)


def run_texts():
    enc = encode(texts, 256, False)
    for b in plan([len(e[0]) for e in enc]):
        ids, types, mask = tensors(enc, b)
        h = emb(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)


with torch.inference_mode():
    for name, f, n in [("cross_encoder_minilm_pairs", run_pairs, len(pairs)), ("embedder_minilm_texts", run_texts, len(texts))]:
        f()
        times = []
        for _ in range(10):
            t = time.perf_counter()
            f()
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        print(f"torch {torch.__version__} {threads} threads  {name}: median {med:.3f} s for {n} ({n / med:.1f}/s)")
