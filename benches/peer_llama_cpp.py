"""The judge's peer: llama.cpp (llama-cpp-python from PyPI) rating the same prompts, token for token,
through the same GGUF file, on the same threads.

    CANDOR_BENCH_TOKENS=/tmp/judge-tokens.json cargo bench --bench judge     # writes the tokens
    python3 benches/peer_llama_cpp.py /tmp/judge-tokens.json 2 10           # 2 threads, median of 10

The tokens file (benches/judge.rs) holds the GGUF's path, the rubric prefix's token ids, each
prompt's continuation ids, the ids of the digits 1 to 5 and candor's expected rating for each prompt.
A pass does what candor's `JudgeModel::rate` does: the prefix once, then each continuation after the
prefix's KV cache, reading the next-token logits of the digits; llama.cpp evaluates one sequence at
a time (candor batches rows padded to multiples of 16). Prints the median pass, prompt tokens per
second and prompts per second, and how far llama.cpp's expected ratings are from candor's.
"""

import json
import statistics
import sys

import numpy as np
import peer_data
from llama_cpp import Llama, __version__


def main():
    path, threads, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    spec = json.load(open(path))
    prefix, rows, digits = spec["prefix"], spec["rows"], spec["digits"]
    longest = len(prefix) + max(len(r) for r in rows)
    llm = Llama(
        model_path=spec["gguf"],
        n_ctx=max(512, longest + 16),
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        logits_all=False,
        verbose=False,
    )

    vocab = llm.n_vocab()

    def cut_to(n):
        # Forget every position from n on (the KV cache keeps the prefix).
        ctx = llm._ctx
        if hasattr(ctx, "memory_seq_rm"):
            ctx.memory_seq_rm(-1, n, -1)
        else:
            ctx.kv_cache_seq_rm(-1, n, -1)
        llm.n_tokens = n

    def rate_all():
        cut_to(0)
        llm.eval(prefix)
        out = []
        for r in rows:
            cut_to(len(prefix))
            llm.eval(r)
            # The last token's logits (llama-cpp-python keeps no copy unless logits_all).
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(vocab,)).astype(np.float64)
            p = np.exp(logits[digits] - logits.max())
            out.append(float((np.arange(1, len(digits) + 1) * p).sum() / p.sum()))
        return out

    expected = rate_all()  # warm-up
    times = peer_data.passes(rate_all, runs)
    med = statistics.median(times)
    tokens = len(prefix) + sum(len(r) for r in rows)
    print(
        f"llama-cpp-python {__version__} {threads} threads {spec['model']}: median {med:.3f} s for {len(rows)} prompts "
        f"({tokens} prompt tokens: {tokens / med:.1f} tokens/s, {len(rows) / med:.2f} prompts/s); runs: "
        + ", ".join(f"{x:.3f}" for x in times)
    )
    ours = spec["candor_expected"]
    diff = [abs(a - b) for a, b in zip(expected, ours)]
    r = float(np.corrcoef(expected, ours)[0, 1]) if len(rows) > 2 else float("nan")
    print(f"expected rating (1-5) against candor's: largest |difference| {max(diff):.4f}, mean {statistics.mean(diff):.4f}, Pearson {r:.4f}")


if __name__ == "__main__":
    main()
