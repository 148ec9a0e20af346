"""`metaanalysis pool-csv FILE --measure M --method METHOD --ci {z,knha} [--group COL] --json`

Reads one CSV table, pools it, prints ONE JSON object: the fields of
metafor_reference.json (`MetaResult.to_dict()`), and with --group also
`subgroups` (one object per group, in order of first appearance), `Qbetween`,
`Qbetween_df`, `Qbetween_p`, `QM_common_tau2`, `QMp_common_tau2`.

Layouts (the columns that must be present; others are reported in `notes`):
    PR, PLO, PAS, PFT   study,events,n        (--method GLMM: binomial-normal model, PLO only;
                                               --method BAYES with PLO: Bayesian binomial-normal)
    OR, RR, RD          study,ai,n1i,ci,n2i   (--method MH: Mantel-Haenszel, OR and RR)
    GEN                 study,yi,vi

--method BAYES fits the Bayesian random-effects model (half-normal prior on tau,
`--tau-prior halfnormal:SCALE`, flat prior on mu): the binomial-normal model for PLO,
the normal-normal model on yi, vi otherwise. It prints the same names where they apply
(b = posterior median, ci_lb/ci_ub = equal-tailed credible interval, pi_lb/pi_ub =
posterior predictive interval, tau2 = posterior median of tau^2, bt_*) plus the Bayesian
ones (tau_prior, ci_shortest_lb, tau, ...); frequentist fields (zval, pval, QE, I2) are
not printed.

Bad input (empty file, missing column, a value that is not a number, events > n,
vi <= 0, ...) ends with ONE line on stderr naming the line and column, and exit
code 2. A model that cannot be fitted (no convergence) ends with one line and
exit code 1.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import sys
from pathlib import Path

from metaanalysis.engine.effects import escalc
from metaanalysis.engine.glmm import GLMMConvergenceError, rma_glmm
from metaanalysis.engine.mantel_haenszel import rma_mh
from metaanalysis.engine.estimators import ConvergenceError
from metaanalysis.engine.results import MetaResult
from metaanalysis.engine.subgroups import subgroup_test, subgroups

LAYOUTS = {
    **{m: ("events", "n") for m in ("PR", "PLO", "PAS", "PFT")},
    **{m: ("ai", "n1i", "ci", "n2i") for m in ("OR", "RR", "RD")},
    "GEN": ("yi", "vi"),
}
COUNT_COLUMNS = {"events", "n", "ai", "n1i", "ci", "n2i"}


class InputError(ValueError):
    """Bad input; the message names the file, line and column."""


def main(args) -> int:
    try:
        table = read_table(Path(args.file), args.measure, args.group)
        out = pool(table, measure=args.measure, method=args.method, test=args.ci, level=args.level,
                   transform=getattr(args, "transform", None), tau_prior=getattr(args, "tau_prior", None))
    except (InputError, ValueError) as exc:
        print(f"metaanalysis pool-csv: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (GLMMConvergenceError, ConvergenceError, RuntimeError) as exc:
        print(f"metaanalysis pool-csv: model could not be fitted: {_one_line(exc)}", file=sys.stderr)
        return 1
    print(json.dumps(out, allow_nan=False, default=_plain))
    return 0


@dataclasses.dataclass
class Table:
    path: Path
    study: list[str]
    columns: dict[str, list]          # the layout's columns, parsed
    group: list[str] | None
    ignored: list[str]


def read_table(path: Path, measure: str, group: str | None) -> Table:
    """Parse and check the CSV; every problem is an InputError naming line and column."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{name}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{name}: cannot be read ({exc})") from None
    if not text.strip():
        raise InputError(f"{name}: empty file (expected a header line: study,{','.join(LAYOUTS[measure])})")
    reader = csv.reader(text.splitlines())
    header = [h.strip() for h in next(reader)]
    needed = ("study",) + LAYOUTS[measure] + ((group,) if group else ())
    for col in needed:
        if col not in header:
            raise InputError(f"{name}: line 1 (header): missing column {col!r} "
                             f"(--measure {measure} needs study,{','.join(LAYOUTS[measure])}"
                             + (f"; --group needs {group!r}" if group else "") + ")")
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise InputError(f"{name}: line 1 (header): column(s) {', '.join(map(repr, dup))} appear more than once")
    ignored = [h for h in header if h not in needed]
    study, group_vals = [], []
    cols: dict[str, list] = {c: [] for c in LAYOUTS[measure]}
    row = 0
    for fields in reader:
        line = reader.line_num
        if not any(f.strip() for f in fields):
            continue                       # blank line
        row += 1
        where = f"{name}: line {line} (data row {row})"
        if len(fields) != len(header):
            raise InputError(f"{where}: {len(fields)} fields, the header has {len(header)}")
        rec = dict(zip(header, (f.strip() for f in fields)))
        if not rec["study"]:
            raise InputError(f"{where}, column 'study': empty")
        study.append(rec["study"])
        for col in LAYOUTS[measure]:
            cols[col].append(_number(rec[col], col, where))
        if group:
            if not rec[group]:
                raise InputError(f"{where}, column {group!r}: empty group label")
            group_vals.append(rec[group])
        _check_row(measure, {c: cols[c][-1] for c in cols}, where)
    if row == 0:
        raise InputError(f"{name}: no data rows after the header")
    return Table(path, study, cols, group_vals if group else None, ignored)


def _number(raw: str, col: str, where: str):
    if raw == "":
        raise InputError(f"{where}, column {col!r}: empty")
    try:
        val = float(raw)
    except ValueError:
        raise InputError(f"{where}, column {col!r}: {raw!r} is not a number") from None
    if not math.isfinite(val):
        raise InputError(f"{where}, column {col!r}: {raw!r} is not a finite number")
    if col in COUNT_COLUMNS:
        if val != int(val) or val < 0:
            raise InputError(f"{where}, column {col!r}: {raw!r} is not a non-negative whole number")
        return int(val)
    return val


def _check_row(measure: str, rec: dict, where: str) -> None:
    pairs = {"events": "n", "ai": "n1i", "ci": "n2i"}
    for ev, tot in pairs.items():
        if ev in rec:
            if rec[tot] <= 0:
                raise InputError(f"{where}, column {tot!r}: {rec[tot]} must be positive")
            if rec[ev] > rec[tot]:
                raise InputError(f"{where}, column {ev!r}: {rec[ev]} exceeds {tot} = {rec[tot]}")
    if "vi" in rec and rec["vi"] <= 0:
        raise InputError(f"{where}, column 'vi': {rec['vi']!r} must be positive")


def pool(table: Table, *, measure: str, method: str, test: str, level: float, transform: str | None = None,
         tau_prior: str | None = None) -> dict:
    """Fit the overall model (and one per group) and return the JSON object."""
    if tau_prior is not None and method != "BAYES":
        raise InputError(f"--tau-prior is for --method BAYES; got --method {method}")
    if method == "GLMM" and measure != "PLO":
        raise InputError(f"--method GLMM fits the logit (PLO) model; got --measure {measure}")
    if method == "MH" and measure not in ("OR", "RR"):
        raise InputError(f"--method MH is implemented for --measure OR and RR; got {measure}")
    if transform is not None and measure != "GEN":
        raise InputError(f"--transform is for --measure GEN; {measure} has its own back-transformation")
    extra_notes = []
    if table.ignored:
        extra_notes.append("columns not used: " + ", ".join(table.ignored))
    if method in ("GLMM", "MH") and test != "z":
        extra_notes.append(f"--ci {test} ignored: the {method} model uses a Wald z interval")
    if method == "BAYES":
        extra_notes.append("--ci ignored: the Bayesian model reports equal-tailed credible intervals")

    fit_one = _fitter(measure, method, test, level, transform, tau_prior)
    idx_all = list(range(len(table.study)))
    overall = fit_one(table, idx_all)
    overall = dataclasses.replace(overall, notes=overall.notes + tuple(extra_notes))
    out = _result_dict(overall)
    if table.group is None:
        return out
    if method in ("GLMM", "MH", "BAYES"):
        groups = {}
        for label in dict.fromkeys(table.group):
            groups[label] = fit_one(table, [i for i in idx_all if table.group[i] == label])
        singles = [label for label, r in groups.items() if r.k == 1]
        notes = (["group(s) with one study enter Qbetween with that study's own estimate and se: "
                  + ", ".join(singles)] if singles and method != "BAYES" else [])
        if method == "BAYES":
            q = df = p = None
            notes.append("no test for subgroup differences: compare the groups' credible intervals")
        elif len(groups) >= 2:
            q, df, p = subgroup_test(groups)
        else:
            q = df = p = None
            notes.append(f"only {len(groups)} group: no test for subgroup differences")
        qm = qmp = None
    else:
        es = _effects(table, measure, idx_all)
        sub = subgroups(es.yi, es.vi, table.group, method=method, test=test, level=level, measure=measure,
                        studies=table.study, events=es.events, n=es.n)
        groups, q, df, p = sub.groups, sub.Qbetween, sub.Qbetween_df, sub.Qbetween_p
        qm, qmp, notes = sub.QM_common_tau2, sub.QMp_common_tau2, list(sub.notes)
    out.update(subgroups={g: _result_dict(r) for g, r in groups.items()}, Qbetween=q, Qbetween_df=df,
               Qbetween_p=p, QM_common_tau2=qm, QMp_common_tau2=qmp, subgroup_notes=notes)
    return out


def _fitter(measure, method, test, level, transform=None, tau_prior=None):
    def fit(table: Table, idx: list[int]) -> MetaResult:
        studies = [table.study[i] for i in idx]
        c = {k: [v[i] for i in idx] for k, v in table.columns.items()}
        if method == "BAYES":
            return _fit_bayes(table, idx, measure, level, transform, tau_prior)
        if method == "GLMM":
            return rma_glmm(c["events"], c["n"], studies=studies, level=level, nAGQ=7)
        if method == "MH":
            return rma_mh(c["ai"], c["n1i"], c["ci"], c["n2i"], measure=measure, level=level, studies=studies)
        from metaanalysis.engine.rma import rma_effects
        return rma_effects(_effects(table, measure, idx), method=method, test=test, level=level,
                           pi_method="metafor", transform=transform)
    return fit


def _fit_bayes(table: Table, idx: list[int], measure, level, transform, tau_prior):
    from metaanalysis.engine.bayes_priors import default_tau_prior, parse_tau_prior
    if tau_prior is None and measure == "GEN":
        raise InputError("--method BAYES with --measure GEN needs --tau-prior halfnormal:SCALE "
                         "(there is no default scale for a generic yi; 0.5 suits log ratios such as log HRs)")
    prior = parse_tau_prior(tau_prior) if tau_prior is not None else default_tau_prior(measure)
    if measure == "PLO":
        from metaanalysis.engine.bayes_binomial import rma_bayes_binomial
        return rma_bayes_binomial([table.columns["events"][i] for i in idx],
                                  [table.columns["n"][i] for i in idx], studies=[table.study[i] for i in idx],
                                  tau_prior=prior, level=level)
    from metaanalysis.engine.bayes import rma_bayes_effects
    return rma_bayes_effects(_effects(table, measure, idx), tau_prior=prior, level=level, transform=transform)


def _effects(table: Table, measure: str, idx: list[int]):
    c = {k: [v[i] for i in idx] for k, v in table.columns.items()}
    return escalc(measure, studies=[table.study[i] for i in idx], **c)


def _result_dict(res: MetaResult) -> dict:
    d = res.to_dict()
    if res.method == "GLMM" and "QE_LRT" in res.provenance:
        d.update(QE_LRT=res.provenance["QE_LRT"], QEp_LRT=res.provenance["QEp_LRT"])
    return d


def _plain(x):
    """json.dumps fallback for numpy scalars."""
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"cannot write {type(x).__name__} as JSON")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


__all__ = ["main", "read_table", "pool", "InputError"]
