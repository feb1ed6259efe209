"""The PyTorch peer of `cargo bench --bench engine`: the same inputs (the same rows of ../shared/data),
the same weights (candor-nli-minilm: the cross-encoder as it is, the embedder as its encoder with mean
pooling and L2 normalisation), the same batching (length-sorted, cut by the same token budget and batch
size as candor on that device), results copied back to the host like candor's. Prints the median of
10 runs.

    python benches/peer_torch.py MODEL_DIR [DATA_DIR] [THREADS] [--device cuda] [--onnx]

With --onnx it also times ONNX Runtime int8 (`quantize_dynamic`, signed 8-bit weights per channel:
what sentence-transformers' `export_dynamic_quantized_onnx_model` makes) and prints how far each
ONNX graph's cross-encoder verdicts agree with PyTorch f32's on the same pairs (P(entailment) at the
claim threshold, 0.3 by default or --threshold=X, and the largest difference in P(entailment)).

MODEL_DIR is models/candor-nli-minilm. On the CPU it runs in f32 with THREADS threads (default 2) and,
with --onnx, also through ONNX Runtime (the same graphs exported from PyTorch); with --device cuda it
runs in f16 on the GPU (the dtype candor uses there) with 4096 pairs and 4096 texts, as the bench does.
Needs torch, transformers and tokenizers (and onnx, onnxruntime for --onnx); it is a measuring aid, not
part of the build or the tests.
"""
import json, os, statistics, sys

import torch

import peer_data
from peer_data import text
from tokenizers import Tokenizer
from transformers import BertForSequenceClassification, BertModel

flags = [a for a in sys.argv[1:] if a.startswith("--")]
args = [a for a in sys.argv[1:] if not a.startswith("--") and a != "cuda"]
device = "cuda" if "--device" in flags else "cpu"
model_dir = args[0]
data = args[1] if len(args) > 1 else os.path.join(os.path.dirname(__file__), "../../shared/data")
threads = int(args[2]) if len(args) > 2 else 2
torch.set_num_threads(threads)
gpu = device == "cuda"
dtype = torch.float16 if gpu else torch.float32
budget, max_batch = (65536, 1024) if gpu else (4096, 64)
n = 1024 if gpu else 32


def rows(rel, n):
    return peer_data.rows(data, rel, n)


pairs = [(text(r["premise"]), text(r["hypothesis"])) for r in rows("nli/snli-dev.jsonl", n)]
for f in ["grounding/halueval-qa.jsonl", "grounding/factcheckgpt-stance.jsonl", "grounding/wice-dev.jsonl"]:
    pairs += [(text(r["evidence"]), text(r["claim"])) for r in rows(f, n)]
texts = []
tn = 1024 if gpu else 64
for r in rows("similarity/stsb-test.jsonl", tn):
    texts += [r["a"], r["b"]]
texts += [r["claim"] for r in rows("grounding/halueval-qa.jsonl", tn)]
texts += [text(r["evidence"]) for r in rows("grounding/factcheckgpt-stance.jsonl", tn)]
# candor computes each distinct input once; so does the peer.
pairs = list(dict.fromkeys(pairs))
texts = list(dict.fromkeys(texts))

tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
tok.no_padding()


def encode(items, max_len, pair):
    tok.enable_truncation(max_len)
    enc = tok.encode_batch(items) if not pair else tok.encode_batch([list(p) for p in items])
    return [(e.ids, e.type_ids) for e in enc]


def plan(lengths):
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
        k = len(encoded[i][0])
        ids[r, :k] = torch.tensor(encoded[i][0])
        types[r, :k] = torch.tensor(encoded[i][1])
        mask[r, :k] = 1
    return ids.to(device), types.to(device), mask.to(device)


def load(cls):
    try:
        m = cls.from_pretrained(model_dir, dtype=dtype)
    except TypeError:
        m = cls.from_pretrained(model_dir, torch_dtype=dtype)
    return m.to(device).eval()


ce = load(BertForSequenceClassification)
emb = load(BertModel)


def pool(h, mask):
    m = mask.unsqueeze(-1).to(h.dtype)
    return torch.nn.functional.normalize(((h * m).sum(1) / m.sum(1)).float(), dim=-1)


def run_pairs():
    # Tokenising is part of the work, as in candor's predict.
    enc = encode(pairs, 512, True)
    out = [None] * len(enc)
    for b in plan([len(e[0]) for e in enc]):
        ids, types, mask = tensors(enc, b)
        probs = torch.softmax(ce(input_ids=ids, token_type_ids=types, attention_mask=mask).logits.float(), -1).cpu()
        for r, i in enumerate(b):
            out[i] = probs[r]
    return out


def run_texts():
    enc = encode(texts, 256, False)
    for b in plan([len(e[0]) for e in enc]):
        ids, types, mask = tensors(enc, b)
        pool(emb(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state, mask).cpu()


def timed(name, f, count, label):
    def run():
        f()
        if gpu:
            torch.cuda.synchronize()

    run()
    med = statistics.median(peer_data.passes(run, 10))
    print(f"{label} {name}: median {med:.4f} s for {count} ({count / med:.1f}/s)", flush=True)


where = f"{torch.cuda.get_device_name()} fp16" if gpu else f"{threads} threads f32"
with torch.inference_mode():
    timed("cross_encoder_minilm_pairs", run_pairs, len(pairs), f"torch {torch.__version__} {where}")
    timed("embedder_minilm_texts", run_texts, len(texts), f"torch {torch.__version__} {where}")

if "--onnx" in flags and not gpu:
    import onnxruntime as ort
    import tempfile

    tmp = tempfile.mkdtemp()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sessions = {}

    class Graph(torch.nn.Module):
        """Keyword inputs in, one tensor out (logits, or the last hidden states), for the exporter."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.logits if hasattr(out, "logits") else out.last_hidden_state

    for name, model in [("ce", ce), ("emb", emb)]:
        path = os.path.join(tmp, f"{name}.onnx")
        ids = torch.ones(2, 16, dtype=torch.long)
        torch.onnx.export(Graph(model).eval(), (ids, ids, ids), path, input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["out"], dynamic_axes={k: {0: "b", 1: "s"} for k in ["input_ids", "attention_mask", "token_type_ids"]},
                          opset_version=17, dynamo=False)
        sessions[name] = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    from onnxruntime.quantization import QuantType, quantize_dynamic

    for name in ["ce", "emb"]:
        src, dst = os.path.join(tmp, f"{name}.onnx"), os.path.join(tmp, f"{name}-int8.onnx")
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=True)
        sessions[f"{name}-int8"] = ort.InferenceSession(dst, opts, providers=["CPUExecutionProvider"])

    def ort_pairs(graph="ce"):
        enc = encode(pairs, 512, True)
        out = [None] * len(enc)
        for b in plan([len(e[0]) for e in enc]):
            ids, types, mask = (t.numpy() for t in tensors(enc, b))
            logits = sessions[graph].run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
            probs = torch.softmax(torch.from_numpy(logits), -1)
            for r, i in enumerate(b):
                out[i] = probs[r]
        return out

    def ort_texts(graph="emb"):
        enc = encode(texts, 256, False)
        for b in plan([len(e[0]) for e in enc]):
            ids, types, mask = tensors(enc, b)
            h = sessions[graph].run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "token_type_ids": types.numpy()})[0]
            pool(torch.from_numpy(h), mask)

    for kind, suffix in [("f32", ""), ("int8 (quantize_dynamic, QInt8 per channel)", "-int8")]:
        label = f"onnxruntime {ort.__version__} {threads} threads {kind}"
        timed("cross_encoder_minilm_pairs", lambda: ort_pairs("ce" + suffix), len(pairs), label)
        timed("embedder_minilm_texts", lambda: ort_texts("emb" + suffix), len(texts), label)

    # Verdict agreement with PyTorch f32 on the same pairs (entailment is the model's label 0 or as
    # config.json's id2label names it).
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    ent = next(int(k) for k, v in cfg["id2label"].items() if v.lower().startswith("entail"))
    thr = float(next((f.split("=", 1)[1] for f in flags if f.startswith("--threshold=")), 0.3))
    with torch.inference_mode():
        ref = [p[ent].item() for p in run_pairs()]
    for kind, graph in [("f32", "ce"), ("int8", "ce-int8")]:
        got = [p[ent].item() for p in ort_pairs(graph)]
        same = sum((a >= thr) == (b >= thr) for a, b in zip(ref, got))
        print(f"onnxruntime {kind} vs torch f32: verdicts at {thr} equal on {same}/{len(ref)} pairs, "
              f"largest |dP(entailment)| {max(abs(a - b) for a, b in zip(ref, got)):.4f}", flush=True)
