"""The judge against human similarity scores: STS-B test pairs graded by `candor grade` with a
similarity rubric (G-Eval expected rating), Spearman correlation with the human 0-5 scores, beside the
embedder's cosine on the same pairs (the `consistency` metric's `cosine`, from a second run).

    python3 benches/judge_stsb.py CANDOR_BINARY DATA_DIR JUDGE_MODEL [PAIRS] [WORK_DIR]

PAIRS (default: all 1,379) takes the first N pairs of similarity/stsb-test.jsonl, in file order.
Prints one line per figure; docs/quality.md records them.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

binary, data, model = sys.argv[1:4]
pairs = int(sys.argv[4]) if len(sys.argv) > 4 else None
work = sys.argv[5] if len(sys.argv) > 5 else tempfile.mkdtemp(prefix="candor-stsb-")
os.makedirs(work, exist_ok=True)

rows = [json.loads(l) for l in open(os.path.join(data, "similarity", "stsb-test.jsonl")) if l.strip()]
rows = rows[:pairs] if pairs else rows
suite = os.path.join(work, "stsb.jsonl")
with open(suite, "w") as f:
    for i, r in enumerate(rows):
        # The reference is the first sentence too, so that a consistency run embeds both.
        f.write(json.dumps({"id": f"stsb-{i}", "input": r["a"], "output": r["b"], "reference": r["a"],
                            "label": {"score": r["score"]}}) + "\n")
config = os.path.join(work, "stsb.toml")
with open(config, "w") as f:
    f.write(f"""[models]
judge = "{model}"

[[rubric]]
name = "similar"
criterion = "Text A and Text B mean the same thing."
fields = ["input", "output"]
labels = {{ input = "Text A", output = "Text B" }}
anchors = ["completely different meanings", "exactly the same meaning"]
""")

def spearman(x, y):
    def ranks(v):
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(v):
            j = i
            while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r
    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    return cov / (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5

def grade(out, metrics):
    t = time.time()
    p = subprocess.run([binary, "grade", suite, "-o", out, "--config", config, "--metrics", metrics, "--no-cache", "-q"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(p.stderr)
    return time.time() - t, [json.loads(l) for l in open(out)]

gold = [r["score"] for r in rows]
secs, res = grade(os.path.join(work, "judge.jsonl"), "judge")
judge = [r["metrics"]["similar"]["rating"] for r in res]
mass = sum(r["metrics"]["similar"]["mass"] for r in res) / len(res)
print(f"judge {model}: Spearman {spearman(judge, gold):.4f} on {len(rows)} STS-B test pairs "
      f"({secs:.0f} s, mean mass on the digits {mass:.3f})")
_, res = grade(os.path.join(work, "embed.jsonl"), "consistency")
cos = [r["metrics"]["consistency"]["reference"]["cosine"] for r in res]
print(f"embedder cosine: Spearman {spearman(cos, gold):.4f} on the same pairs")
