#!/usr/bin/env python3
"""Writes public claim-verification sets that candor never trained on as labelled candor suites.

The sets are not in ../shared/data and not in this repository: clone their authors' repositories
and point this script at them. Each case is one claim (`output`) against its evidence (`contexts`),
with the human verdict as `label` ({"supported": true/false}) and the set's own label kept in
`segments`, so that

    python3 scripts/unseen_sets.py --out unseen \
        --climate-fever climate-fever-dataset/dataset/climate-fever.jsonl \
        --fever-symmetric FeverSymmetric/symmetric_v0.2/fever_symmetric_test.jsonl \
        --healthver HealthVer/data/healthver_test.csv
    candor grade unseen/climate-fever.jsonl --metrics support -o unseen/climate-fever.results.jsonl
    candor calibrate unseen/climate-fever.results.jsonl --by gold

measures the grader as a user would (balanced accuracy at the configured threshold, ROC-AUC, and the
threshold the labels would choose). Sources (each under its own license; see their READMEs):

- Climate-FEVER (Diggelmann et al. 2020), github.com/tdiggelm/climate-fever-dataset: 1,535 real-world
  climate claims, each with five Wikipedia sentences. One case a claim, the five sentences as its
  contexts; supported = the claim's label is SUPPORTS; REFUTES and NOT_ENOUGH_INFO are not supported;
  DISPUTED claims (annotators disagreed) are left out.
- FEVER-Symmetric v0.2 test (Schuster et al. 2019), github.com/TalSchuster/FeverSymmetric: FEVER
  claims rewritten so that the claim alone gives the label away no more than chance; one case a pair.
  supported = SUPPORTS.
- HealthVer test (Sarrouti et al. 2021), github.com/sarrouti/HealthVer: COVID-19 health claims from
  the web against sentences of scientific abstracts; one case a pair; supported = Supports (Refutes and
  Neutral are not). The question the claim answers is kept as `input`.
"""

import argparse
import csv
import json
import os
import sys


def jsonl(path):
    """(line number, row) for each non-blank line of a JSON Lines file."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield n, json.loads(line)


def climate_fever(path):
    for _, row in jsonl(path):
        gold = row["claim_label"]
        if gold == "DISPUTED":
            continue
        contexts = [{"id": str(i + 1), "title": e.get("article", ""), "text": e["evidence"]} for i, e in enumerate(row["evidences"])]
        yield {
            "id": f"climate-fever-{row['claim_id']}",
            "output": row["claim"],
            "contexts": contexts,
            "segments": {"set": "climate-fever", "gold": gold},
            "label": {"supported": gold == "SUPPORTS"},
        }


def fever_symmetric(path):
    for n, row in jsonl(path):
        gold = row.get("gold_label") or row["label"]
        yield {
            "id": f"fever-symmetric-{n}",
            "output": row["claim"],
            "contexts": [row["evidence"]],
            "segments": {"set": "fever-symmetric", "gold": gold},
            "label": {"supported": gold == "SUPPORTS"},
        }


def healthver(path):
    with open(path, encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.DictReader(f), 2):
            gold = row["label"].strip()
            if gold not in ("Supports", "Refutes", "Neutral"):
                sys.exit(f"{path}:{n}: label {gold!r} is not Supports, Refutes or Neutral")
            case = {
                "id": f"healthver-{row['id']}-{n}",
                "output": row["claim"].strip(),
                "contexts": [row["evidence"].strip()],
                "segments": {"set": "healthver", "gold": gold},
                "label": {"supported": gold == "Supports"},
            }
            if row.get("question", "").strip():
                case["input"] = row["question"].strip()
            yield case


READERS = {"climate-fever": climate_fever, "fever-symmetric": fever_symmetric, "healthver": healthver}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for the suites (SET.jsonl)")
    for name in READERS:
        ap.add_argument(f"--{name}", metavar="FILE", help=f"the {name} file (see above)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    wrote = 0
    for name, read in READERS.items():
        path = getattr(args, name.replace("-", "_"))
        if not path:
            continue
        cases = list(read(path))
        out = os.path.join(args.out, f"{name}.jsonl")
        with open(out, "w", encoding="utf-8") as f:
            for c in cases:
                f.write(json.dumps(c, ensure_ascii=False) + "\n")
        pos = sum(c["label"]["supported"] for c in cases)
        print(f"{out}: {len(cases)} cases, {pos} supported, {len(cases) - pos} not")
        wrote += 1
    if not wrote:
        ap.error("name at least one set's file")


if __name__ == "__main__":
    main()
