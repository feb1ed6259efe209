"""Times `candor grade` on a large suite of the bundled kind and reports the share of the run spent
outside the models (reading, splitting, chunking, tokenising, scheduling, assembling, writing).

    python3 benches/grade_suite.py CANDOR_BINARY [CASES] [WORK_DIR] [-- GRADE_ARGS...]

GRADE_ARGS go to `candor grade` as they are, e.g. `-- --device cuda --metrics support,citation`.

The suite is examples/suite.jsonl repeated to CASES cases (default 10,000). Each copy k is made
distinct where the models would otherwise see the same inputs: its contexts start with "Revision k.",
and its reference and samples with "Ticket k:". So every (premise, claim) pair is new and the
suite-wide de-duplication cannot shrink the work: the run costs what 10,000 different cases cost.

candor prints the model time (forward passes, until the results are back on the host) on its last
line; this script prints that line, the wall time of the whole command, and the overhead share.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
args, extra = (sys.argv[1:], [])
# --print-suite: write the suite to WORK_DIR and stop (benches/cache_regrade.py uses it).
only_suite = "--print-suite" in args
args = [a for a in args if a != "--print-suite"]
if "--" in args:
    args, extra = args[: args.index("--")], args[args.index("--") + 1 :]
binary = args[0]
cases = int(args[1]) if len(args) > 1 else 10_000
work = args[2] if len(args) > 2 else tempfile.mkdtemp(prefix="candor-bench-")
os.makedirs(work, exist_ok=True)  # a WORK_DIR that does not exist yet is made

rows = [json.loads(l) for l in open(os.path.join(here, "..", "examples", "suite.jsonl")) if l.strip()]
suite = os.path.join(work, "suite.jsonl")
with open(suite, "w") as f:
    for k in range(cases):
        r = json.loads(json.dumps(rows[k % len(rows)]))
        r["id"] = f"{r['id']}-{k}"
        r["contexts"] = [
            dict(c, text=f"Revision {k}. {c['text']}") if isinstance(c, dict) else f"Revision {k}. {c}"
            for c in r.get("contexts", [])
        ]
        if r.get("reference"):
            r["reference"] = f"Ticket {k}: {r['reference']}"
        r["samples"] = [f"Ticket {k}: {s}" for s in r.get("samples", [])]
        f.write(json.dumps(r) + "\n")

if only_suite:
    sys.exit(0)
out = os.path.join(work, "results.jsonl")
started = time.monotonic()
# --no-cache: every pair is computed (a warm score cache would answer them from disk).
p = subprocess.run([binary, "grade", suite, "-o", out, "-q", "--no-cache", *extra], capture_output=True, text=True)
wall = time.monotonic() - started
if p.returncode != 0:
    sys.exit(f"candor failed ({p.returncode}):\n{p.stderr}")
last = [l for l in p.stderr.splitlines() if "graded in" in l][-1]
print(last)
graded = float(re.search(r"graded in ([0-9.]+) s", last).group(1))
model = float(re.search(r"model time ([0-9.]+) s", last).group(1))
print(f"cases: {cases}; grading loop {graded:.1f} s, model {model:.1f} s, outside the model {graded - model:.1f} s "
      f"= {100 * (graded - model) / graded:.1f}% of the loop; whole command (with model loading) {wall:.1f} s; "
      f"{cases / graded:.1f} cases/s")
