#!/usr/bin/env python3
"""Builds the tiny random-weight parity fixtures under tests/fixtures/.

Each fixture is a model made from a config (no download), saved as safetensors with the upstream
tensor names, plus the inputs and the reference outputs computed by Hugging Face transformers.
The Rust parity tests (tests/parity.rs) load them and must match within 1e-4.

Run: python3 scripts/make_parity_fixtures.py   (needs torch, transformers, safetensors)
"""
import json
import os

import torch
import transformers as tf
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
torch.manual_seed(20261121)

COMMON = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
              intermediate_size=37, max_position_embeddings=64, hidden_dropout_prob=0.1,
              attention_probs_dropout_prob=0.1, initializer_range=0.3)
LABELS = {0: "contradiction", 1: "entailment", 2: "neutral"}
# HHEMv2Config.prompt in vectara/hallucination_evaluation_model (configuration_hhem_v2.py).
HHEM_PROMPT = "<pad> Determine if the hypothesis is true given the premise?\n\nPremise: {text1}\n\nHypothesis: {text2}"


def inputs(pad_id, first_id, sep_id, with_types):
    lens = [11, 7, 3]
    seq = max(lens)
    ids, mask, types = [], [], []
    g = torch.Generator().manual_seed(7)
    for n in lens:
        body = torch.randint(5, 60, (n - 2,), generator=g).tolist()
        row = [first_id] + body + [sep_id]
        t = [0] * (n // 2) + [1] * (n - n // 2) if with_types else [0] * n
        ids.append(row + [pad_id] * (seq - n))
        mask.append([1] * n + [0] * (seq - n))
        types.append(t + [0] * (seq - n))
    return ids, mask, types


def perturb(model):
    # Random init leaves LayerNorm at 1/0 and biases at 0; move them so a wrong name or order shows.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)


def dump(name, model, config, ids, mask, types, kind, extra=None):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    model.eval()
    perturb(model)
    config_dict = config.to_dict()
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config_dict, f, indent=1, sort_keys=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(d, "model.safetensors"))
    t_ids, t_mask, t_types = (torch.tensor(x) for x in (ids, mask, types))
    with torch.no_grad():
        if kind == "classifier":
            kw = dict(input_ids=t_ids, attention_mask=t_mask)
            if config.type_vocab_size > 1:
                kw["token_type_ids"] = t_types
            out = model(**kw).logits
        else:
            h = model(input_ids=t_ids, attention_mask=t_mask, token_type_ids=t_types).last_hidden_state
            m = t_mask.unsqueeze(-1).float()
            out = (h * m).sum(1) / m.sum(1)
            out = torch.nn.functional.normalize(out, dim=-1)
    ref = dict(input_ids=ids, attention_mask=mask, token_type_ids=types, output=out.tolist(), kind=kind,
               transformers=tf.__version__, torch=torch.__version__)
    if extra:
        ref.update(extra)
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(ref, f)
    print(name, tuple(out.shape), sum(p.numel() for p in model.parameters()), "params")


def dump_scored(name, model, configs, ids, mask, types, score, skip_suffix):
    """A two-label model read through its own scoring (`score(ids, mask)`): the padded batch's outputs
    and each row's alone. `configs` maps paths in the fixture folder to config dicts; the tensors that
    T5 ties to `shared` (names ending in `skip_suffix`) are kept once, as save_pretrained does."""
    d = os.path.join(OUT, name)
    model.eval()
    perturb(model)
    for path, config in configs.items():
        os.makedirs(os.path.dirname(os.path.join(d, path)), exist_ok=True)
        with open(os.path.join(d, path), "w") as f:
            json.dump(config, f, indent=1, sort_keys=True)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items() if not k.endswith(skip_suffix)}
    save_file(state, os.path.join(d, "model.safetensors"))
    with torch.no_grad():
        out = score(torch.tensor(ids), torch.tensor(mask))
        alone = [score(torch.tensor([r[:sum(m)]]), torch.tensor([m[:sum(m)]]))[0].tolist() for r, m in zip(ids, mask)]
    ref = dict(input_ids=ids, attention_mask=mask, token_type_ids=types, output=out.tolist(), alone=alone,
               kind="classifier", transformers=tf.__version__, torch=torch.__version__)
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(ref, f)
    print(name, tuple(out.shape), sum(p.numel() for p in model.parameters()), "params")


def main():
    # BERT cross-encoder (MiniLM-style).
    cfg = tf.BertConfig(**COMMON, type_vocab_size=2, id2label=LABELS)
    ids, mask, types = inputs(0, 2, 3, True)
    dump("bert-cls", tf.BertForSequenceClassification(cfg), cfg, ids, mask, types, "classifier")

    # BERT sentence embedder, mean pooling + L2 normalisation.
    cfg = tf.BertConfig(**COMMON, type_vocab_size=2)
    dump("bert-embed", tf.BertModel(cfg, add_pooling_layer=False), cfg, ids, mask, types, "embedding",
         {"pooling": "mean", "normalize": True})

    # RoBERTa cross-encoder: positions start after padding_idx, no token types.
    cfg = tf.RobertaConfig(**COMMON, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                           id2label=LABELS)
    cfg.max_position_embeddings = 66
    ids, mask, types = inputs(1, 0, 2, False)
    dump("roberta-cls", tf.RobertaForSequenceClassification(cfg), cfg, ids, mask, types, "classifier")

    # XLM-RoBERTa: the same network under another model_type.
    cfg = tf.XLMRobertaConfig(**COMMON, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                              id2label=LABELS)
    cfg.max_position_embeddings = 66
    dump("xlm-roberta-cls", tf.XLMRobertaForSequenceClassification(cfg), cfg, ids, mask, types, "classifier")

    # DeBERTa-v3 cross-encoder: relative attention with log buckets, shared keys, no absolute positions.
    cfg = tf.DebertaV2Config(**COMMON, type_vocab_size=0, relative_attention=True, max_relative_positions=-1,
                             position_buckets=8, pos_att_type=["p2c", "c2p"], norm_rel_ebd="layer_norm",
                             share_att_key=True, position_biased_input=False, pad_token_id=0,
                             pooler_hidden_size=32, pooler_hidden_act="gelu", id2label=LABELS)
    ids, mask, types = inputs(0, 1, 2, False)
    dump("deberta-v2-cls", tf.DebertaV2ForSequenceClassification(cfg), cfg, ids, mask, types, "classifier")

    # HHEM-2.1-open: a T5 encoder (relative position buckets, RMS layer norm, gated GELU) under
    # T5ForTokenClassification, read at the first token, as vectara/hallucination_evaluation_model's
    # HHEMv2ForSequenceClassification does (its `t5` attribute gives the upstream `t5.` prefix). Its
    # config.json is HHEM's own (foundation, prompt, labels); the T5 config is the foundation's,
    # kept in foundation/config.json. Rows of 11, 7 and 3 tokens in one padded batch: the padding
    # mask must keep the shorter rows as they are alone. 8 buckets over a maximum distance of 16
    # put rows of 11 tokens into the logarithmic buckets.
    t5 = tf.T5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                     relative_attention_num_buckets=8, relative_attention_max_distance=16,
                     feed_forward_proj="gated-gelu", dropout_rate=0.1, initializer_factor=1.0,
                     pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, is_encoder_decoder=False,
                     num_labels=2)
    t5.id2label = {0: "hallucinated", 1: "consistent"}
    t5.label2id = {"hallucinated": 0, "consistent": 1}

    class Hhem(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.t5 = tf.T5ForTokenClassification(t5)

        def forward(self, input_ids, attention_mask):
            return self.t5(input_ids=input_ids, attention_mask=attention_mask).logits[:, 0, :]

    model = Hhem()
    ids, mask, types = inputs(0, 0, 1, False)
    hhem_config = {"architectures": ["HHEMv2ForSequenceClassification"], "model_type": "HHEMv2",
                   "foundation": "google/flan-t5-base", "prompt": HHEM_PROMPT,
                   "id2label": {"0": "hallucinated", "1": "consistent"}}
    dump_scored("hhem-t5", model, {"config.json": hhem_config, "foundation/config.json": t5.to_dict()},
                ids, mask, types, model, "encoder.embed_tokens.weight")

    # MiniCheck-Flan-T5: T5ForConditionalGeneration scored by one decoder step from the start token
    # (id 0), read at the label tokens 3 and 209 (lytang/MiniCheck minicheck/inference.py). Flan-T5's
    # output layer is untied from the embedding; the vocabulary must reach token 209.
    t5 = tf.T5Config(vocab_size=256, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_decoder_layers=2, num_heads=4,
                     relative_attention_num_buckets=8, relative_attention_max_distance=16,
                     feed_forward_proj="gated-gelu", dropout_rate=0.1, initializer_factor=1.0,
                     pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, is_encoder_decoder=True,
                     tie_word_embeddings=False)
    model = tf.T5ForConditionalGeneration(t5)
    # transformers 5 ties lm_head to the embedding when it builds a model; flan-t5's checkpoints carry
    # their own (config `tie_word_embeddings: false`, which also turns off the d_model**-0.5 scaling).
    model.lm_head.weight = torch.nn.Parameter(model.shared.weight.detach().clone() + 0.05 * torch.randn_like(model.shared.weight))
    assert not model.config.scale_decoder_outputs
    g = torch.Generator().manual_seed(11)
    lens = [11, 7, 3]
    ids = [[int(x) for x in torch.randint(5, 250, (n - 1,), generator=g)] + [1] + [0] * (11 - n) for n in lens]
    mask = [[1] * n + [0] * (11 - n) for n in lens]
    types = [[0] * 11 for _ in lens]
    config_dict = t5.to_dict()
    config_dict["tie_word_embeddings"] = False  # as google/flan-t5-large's config.json says
    config_dict.pop("scale_decoder_outputs", None)

    def score(i, m):
        start = torch.zeros((i.shape[0], 1), dtype=torch.long)
        return model(input_ids=i, attention_mask=m, decoder_input_ids=start).logits[:, 0, [3, 209]]

    dump_scored("minicheck-t5", model, {"config.json": config_dict}, ids, mask, types, score, "embed_tokens.weight")

    # LettuceDetect: ModernBertForTokenClassification (KRLabsOrg/LettuceDetect, detectors/transformer.py),
    # a label for every token. Three layers, the middle one local with a window of 4 (each token sees
    # those at most 2 away), so rows of 11 tokens exercise the sliding window, and rotary bases far
    # apart so that a layer given the other's fails. Eager attention: the padded rows are compared on
    # their real tokens only (what a padded query sees is not defined the same way everywhere).
    mb = tf.ModernBertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                             intermediate_size=24, max_position_embeddings=64, local_attention=4,
                             global_attn_every_n_layers=2, global_rope_theta=1000.0, local_rope_theta=50.0,
                             pad_token_id=0, bos_token_id=2, cls_token_id=2, eos_token_id=3, sep_token_id=3,
                             num_labels=2, initializer_range=0.3)
    mb._attn_implementation = "eager"
    model = tf.ModernBertForTokenClassification(mb)
    ids, mask, types = inputs(0, 2, 3, False)
    d = os.path.join(OUT, "modernbert-tok")
    os.makedirs(d, exist_ok=True)
    model.eval()
    perturb(model)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(mb.to_dict(), f, indent=1, sort_keys=True)
    save_file({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}, os.path.join(d, "model.safetensors"))
    with torch.no_grad():
        out = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits
        lens = [sum(m) for m in mask]
        output = [out[r, :n].flatten().tolist() for r, n in enumerate(lens)]
        alone = [model(input_ids=torch.tensor([row[:n]]), attention_mask=torch.ones((1, n), dtype=torch.long)).logits[0].flatten().tolist()
                 for row, n in zip(ids, lens)]
    ref = dict(input_ids=ids, attention_mask=mask, token_type_ids=types, output=output, alone=alone,
               kind="token-classifier", transformers=tf.__version__, torch=torch.__version__)
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(ref, f)
    print("modernbert-tok", tuple(out.shape), sum(p.numel() for p in model.parameters()), "params")

    # A span tagger small enough to ship, for candor grade's LettuceDetect path end to end
    # (tests/spans.rs): ModernBERT over BERT's vocabulary (the test reads it with
    # models/candor-nli-minilm's tokenizer.json), its head's bias set so that about 1 in 30 of the
    # example suite's answer tokens, read after their question and passages, come out hallucinated
    # (no parity reference: tests/parity.rs checks the network).
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(os.path.dirname(__file__), "..", "models", "candor-nli-minilm", "tokenizer.json"))
    tg = tf.ModernBertConfig(vocab_size=tok.get_vocab_size(), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=24, max_position_embeddings=1024, local_attention=8,
                             global_attn_every_n_layers=2, pad_token_id=0, bos_token_id=101, cls_token_id=101, eos_token_id=102,
                             sep_token_id=102, num_labels=2, initializer_range=0.5)
    tg._attn_implementation = "eager"
    model = tf.ModernBertForTokenClassification(tg)
    model.eval()
    perturb(model)
    suite = [json.loads(l) for l in open(os.path.join(os.path.dirname(__file__), "..", "examples", "suite.jsonl")) if l.strip()]
    diffs = []
    with torch.no_grad():
        for case in suite[:20]:
            passages = [c["text"] if isinstance(c, dict) else c for c in case.get("contexts", [])]
            prompt = "Briefly answer the following question:\n" + (case.get("input") or "") + "\n" + "\n".join(
                f"passage {i + 1}: {p}" for i, p in enumerate(passages)) + "\noutput:"
            enc = tok.encode(prompt, case.get("output") or "x")
            logits = model(input_ids=torch.tensor([enc.ids[:1024]])).logits[0]
            answer = [i for i, sid in enumerate(enc.type_ids[:1024]) if sid == 1]
            diffs += (logits[answer, 1] - logits[answer, 0]).tolist()
        diffs.sort()
        # About 1 answer token in 30 hallucinated: most claims hold none, some hold one.
        model.classifier.bias[1] -= diffs[len(diffs) * 29 // 30]
    d = os.path.join(OUT, "modernbert-tagger")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(tg.to_dict(), f, indent=1, sort_keys=True)
    save_file({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}, os.path.join(d, "model.safetensors"))
    print("modernbert-tagger", sum(p.numel() for p in model.parameters()), "params")


if __name__ == "__main__":
    main()
