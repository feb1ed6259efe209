"""Measures the score cache: grades a suite of the bundled kind with an empty cache, changes the output
of 1% of its cases, grades it again with the same cache, and prints what each run asked of the model.

    python3 benches/cache_regrade.py CANDOR_BINARY [CASES] [WORK_DIR] [-- GRADE_ARGS...]

The suite is benches/grade_suite.py's (examples/suite.jsonl repeated to CASES cases, default 1,000,
each copy distinct). A changed case gets a new last sentence in its output, so its claims change and
its other pairs stay as they were. Both runs use support and citation (the metrics that use NLI
pairs, which is what the cache keeps).
"""
import json
import os
import re
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
args, extra = (sys.argv[1:], [])
if "--" in args:
    args, extra = args[: args.index("--")], args[args.index("--") + 1 :]
binary = os.path.abspath(args[0])
cases = int(args[1]) if len(args) > 1 else 1000
work = args[2] if len(args) > 2 else tempfile.mkdtemp(prefix="candor-cache-")

# The suite: grade_suite.py writes it (--print-suite: and grades nothing).
gen = subprocess.run([sys.executable, os.path.join(here, "grade_suite.py"), binary, "--print-suite", str(cases), work],
                     capture_output=True, text=True)
suite = os.path.join(work, "suite.jsonl")
if not os.path.exists(suite):
    sys.exit(f"cannot make the suite:\n{gen.stderr}")
cache = os.path.join(work, "scores.redb")
if os.path.exists(cache):
    os.remove(cache)


def grade(path, out):
    p = subprocess.run([binary, "grade", path, "-o", out, "-q", "--cache", cache, "--metrics", "support,citation", *extra],
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"candor failed ({p.returncode}):\n{p.stderr}")
    last = [l for l in p.stderr.splitlines() if "graded in" in l][-1]
    nums = {
        "wall": float(re.search(r"graded in ([0-9.]+) s", last).group(1)),
        "cached": int(re.search(r"(\d+) NLI pairs from the score cache", last).group(1)),
        "computed": int(re.search(r"(\d+) computed", last).group(1)),
        "model": float(re.search(r"model time ([0-9.]+) s", last).group(1)),
    }
    print(last)
    return nums


first = grade(suite, os.path.join(work, "first.jsonl"))
changed = os.path.join(work, "changed.jsonl")
rows = [json.loads(l) for l in open(suite) if l.strip()]
step = 100
with open(changed, "w") as f:
    for k, r in enumerate(rows):
        if k % step == 0:
            r["output"] = r["output"].rstrip() + f" Ticket {k} was escalated to the billing team."
        f.write(json.dumps(r) + "\n")
second = grade(changed, os.path.join(work, "second.jsonl"))
n_changed = (len(rows) + step - 1) // step
print(f"{len(rows)} cases, {n_changed} changed ({100 * n_changed / len(rows):.1f}%): "
      f"pairs computed {first['computed']} then {second['computed']} ({100 * second['computed'] / max(first['computed'], 1):.2f}%), "
      f"{second['cached']} from the cache; model time {first['model']:.1f} s then {second['model']:.1f} s "
      f"({100 * second['model'] / max(first['model'], 1e-9):.2f}%); wall {first['wall']:.1f} s then {second['wall']:.1f} s")
