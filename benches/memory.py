"""Peak memory of `candor grade` as a suite grows: N cases cycling through examples/suite.jsonl with
unique ids (so every case is graded and written, while the model work stays that of one copy: the
score cache answers the repeats), graded with support and citation under /usr/bin/time -v.

    python3 benches/memory.py CANDOR_BINARY N [N ...]

Prints, per N: cases, peak resident memory (MiB), wall time, and the size of the results file. The
first, small run warms a fresh score cache, so each measured run reads the same cache.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
binary = os.path.abspath(sys.argv[1])
sizes = [int(n) for n in sys.argv[2:]] or [10_000, 100_000]
work = tempfile.mkdtemp(prefix="candor-mem-")
rows = [json.loads(l) for l in open(os.path.join(here, "..", "examples", "suite.jsonl")) if l.strip()]
cache = os.path.join(work, "scores.redb")


def run(n):
    suite = os.path.join(work, f"suite-{n}.jsonl")
    with open(suite, "w") as f:
        for k in range(n):
            r = dict(rows[k % len(rows)])
            r["id"] = f"{r['id']}-{k}"
            f.write(json.dumps(r) + "\n")
    out = os.path.join(work, f"results-{n}.jsonl")
    p = subprocess.run(["/usr/bin/time", "-v", binary, "grade", suite, "-o", out, "-q", "--cache", cache,
                        "--metrics", "support,citation"], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"candor failed ({p.returncode}):\n{p.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", p.stderr).group(1)
    size = os.path.getsize(out)
    os.remove(out)
    os.remove(suite)
    return rss, wall, size


run(len(rows))
for n in sizes:
    rss, wall, size = run(n)
    print(f"{n} cases: peak RSS {rss / 1024:.0f} MiB, wall {wall}, results {size / 2**20:.0f} MiB")
