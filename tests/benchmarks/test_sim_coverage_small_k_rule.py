"""The small-k rule of metaanalysis/data/analyses.yaml is the one the stored simulation table
supports under the decision rules of docs/methods-small-k.md (written before the run).

The rules are applied here from the CSV (docs/small_k_coverage.csv) by code of this test, not by
the script that wrote the table:
1. design-A cells (n_i 10..100): a method keeps nominal coverage at k if its coverage averaged
   over the (p, tau) cells is >= 94 % and no cell is below 90 %; of the methods that keep it at
   k = 2, 3 and 4, the narrowest (median width averaged over the cells, then over k) is primary;
2. the same among replicates with a 0 % or 100 % arm (not every arm on one boundary), in cells of
   either design with k = 2..4 and >= 200 such replicates, between the normal-normal and the
   binomial-normal model with the prior of rule 1's choice (a `defaults.primary` rule with
   `extreme_arm: true` names it when it differs from rule 1's choice).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "small_k_coverage.csv"
ANALYSES = ROOT / "metaanalysis" / "data" / "analyses.yaml"
DOC = ROOT / "docs" / "methods-small-k.md"
KS = (2, 3, 4)

# simulated method -> (method name in analyses.yaml's registry, half-normal scale of its tau prior)
NAMES = {
    "GLMM": ("GLMM", None),
    "PLO-HKSJ": ("PLO", None),
    "PFT-HKSJ": ("PFT", None),
    "BAYES-NN": ("BAYES-NN", 0.5),
    "BAYES-NN-1": ("BAYES-NN", 1.0),
    "BAYES-BN-1": ("BAYES-BN", 1.0),
}


@pytest.fixture(scope="module")
def rows():
    with open(TABLE, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def defaults():
    """The `defaults` block as written (read here with PyYAML, not by the library's parser)."""
    return yaml.safe_load(ANALYSES.read_text(encoding="utf-8"))["defaults"]


def _primary(defaults, k: int, extreme_arm: bool) -> str:
    """The method of the first `defaults.primary` rule that matches a class of k studies."""
    for rule in defaults["primary"]:
        if rule.get("max_k") is not None and k > rule["max_k"]:
            continue
        if rule.get("extreme_arm") is not None and rule["extreme_arm"] != extreme_arm:
            continue
        return rule["method"]
    raise AssertionError(f"no primary rule matches k = {k}")


def _nominal(rows, keep, cov, wid, methods):
    """{method: mean width over k} of the methods nominal at every k in KS, and the per-k stats."""
    cells = defaultdict(list)
    for r in rows:
        if keep(r) and r["method"] in methods:
            cells[(int(r["k"]), r["method"])].append((float(r[cov]), float(r[wid])))
    ok = {}
    for m in methods:
        per_k = [cells.get((k, m), []) for k in KS]
        if not all(per_k):
            continue
        covs = [np.array([c for c, _ in v]) for v in per_k]
        if all(c.mean() >= 94.0 and c.min() >= 90.0 for c in covs):
            ok[m] = float(np.mean([np.mean([w for _, w in v]) for v in per_k]))
    return ok, cells


def test_the_table_is_the_full_run(rows):
    cells = {(r["design"], r["k"], r["p"], r["tau"]) for r in rows}
    assert len(cells) == 15 * 4 + 3 + 3 * 2 * 3  # design A (k = 2..5, and 10), design B
    assert {r["method"] for r in rows} == set(NAMES)
    assert len(rows) == len(cells) * len(NAMES)
    assert {int(r["replicates"]) for r in rows} == {2000}
    assert {r["p"] for r in rows if r["design"] == "A"} == {"0.1", "0.3", "0.5", "0.7", "0.9"}


def test_primary_method_and_prior_and_max_k_are_the_tables(rows, defaults):
    ok, cells = _nominal(rows, lambda r: r["design"] == "A", "coverage", "median_width", NAMES)
    assert ok, "no method keeps nominal coverage at every k = 2..4: the rule names no primary"
    choice = min(ok, key=ok.get)
    method, scale = NAMES[choice]
    assert method in defaults["methods"]
    assert all(_primary(defaults, k, extreme_arm=False) == method for k in KS)
    assert _primary(defaults, max(KS) + 1, extreme_arm=False) == "GLMM"
    b = defaults["bayes"]
    if scale is not None:
        family, value = b["tau_prior"].split(":")
        assert family == "halfnormal" and float(value) == scale
    assert b["max_k"] == max(KS)
    assert all(np.mean([c for c, _ in cells[(k, choice)]]) >= 94.0 for k in KS)


def test_method_for_classes_with_a_0_or_100_percent_arm_is_the_tables(rows, defaults):
    ok1, _ = _nominal(rows, lambda r: r["design"] == "A", "coverage", "median_width", NAMES)
    _, scale = NAMES[min(ok1, key=ok1.get)]
    candidates = [m for m, (meth, s) in NAMES.items() if meth.startswith("BAYES") and s == scale]
    assert sorted(NAMES[m][0] for m in candidates) == ["BAYES-BN", "BAYES-NN"]

    def eligible(r):
        return int(r["k"]) in KS and int(r["extreme_replicates"]) >= 200

    ok, cells = _nominal(rows, eligible, "extreme_coverage", "extreme_median_width", candidates)
    assert all(cells.get((k, m)) for k in KS for m in candidates), "a k without eligible cells"
    if ok:
        expected = NAMES[min(ok, key=ok.get)][0]
    else:  # neither keeps it: the higher mean conditional coverage (the doc says it failed)
        mean = {m: np.mean([c for k in KS for c, _ in cells[(k, m)]]) for m in candidates}
        expected = NAMES[max(mean, key=mean.get)][0]
    assert expected in defaults["methods"]
    assert all(_primary(defaults, k, extreme_arm=True) == expected for k in KS)


def test_the_doc_shows_this_table(rows):
    text = DOC.read_text(encoding="utf-8")
    ok, _ = _nominal(rows, lambda r: r["design"] == "A", "coverage", "median_width", NAMES)
    assert f"Primary for k = 2..4 by rule 1: {min(ok, key=ok.get)}" in text
    for r in rows:  # every design-A GLMM cell of the table is in the doc's table
        if r["design"] == "A" and r["method"] == "GLMM":
            line = f"| {r['k']} | {r['p']} | {r['tau']} | {float(r['coverage']):.1f} / {float(r['median_width']):.1f}"
            assert line in text, line
