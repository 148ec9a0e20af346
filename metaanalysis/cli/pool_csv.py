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

Numbers are ASCII decimal (`-0.5`, `1e-4`); `1_0`, full-width or Arabic-Indic digits,
`nan`/`inf` are refused; counts are whole numbers written in digits, at most 2^53.

--method BAYES fits the Bayesian random-effects model (half-normal prior on tau,
`--tau-prior halfnormal:SCALE`, flat prior on mu): the binomial-normal model for PLO,
the normal-normal model on yi, vi otherwise. It prints the same names where they apply
(b = posterior median, ci_lb/ci_ub = equal-tailed credible interval, pi_lb/pi_ub =
posterior predictive interval, tau2 = posterior median of tau^2, bt_*) plus the Bayesian
ones (tau_prior, ci_shortest_lb, tau, ...); frequentist fields (zval, pval, QE, I2) are
not printed.

Bad input (empty file, missing column, a value that is not a number, events > n,
vi <= 0, ...) ends with ONE line on stderr naming the line and column, and exit
code 2. A model that cannot be fitted (no convergence), or whose numbers cannot be
held in double precision, ends with one line and exit code 1: the JSON never holds
inf or NaN (an `exp` back-transform beyond the largest double is null, with a note).
A study name used twice is pooled as two rows, with a warning on stderr and in `notes`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
import sys
import warnings
from pathlib import Path

import numpy as np

from metaanalysis.engine.effects import escalc
from metaanalysis.engine.estimators import ConvergenceError
from metaanalysis.engine.glmm import GLMMConvergenceError, rma_glmm
from metaanalysis.engine.mantel_haenszel import rma_mh
from metaanalysis.engine.results import MetaResult
from metaanalysis.engine.subgroups import group_difference, subgroups

LAYOUTS = {
    **{m: ("events", "n") for m in ("PR", "PLO", "PAS", "PFT")},
    **{m: ("ai", "n1i", "ci", "n2i") for m in ("OR", "RR", "RD")},
    "GEN": ("yi", "vi"),
}
COUNT_COLUMNS = {"events", "n", "ai", "n1i", "ci", "n2i"}
_DECIMAL = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII)
_COUNT = re.compile(r"[0-9]+(?:\.0*)?", re.ASCII)
MAX_COUNT = 2**53  # whole numbers a double holds exactly
VI_RANGE = (1e-150, 1e150)  # 1/vi^2 must neither overflow nor vanish
MAX_WEIGHT_SHARE = 1e10  # one study's weight over all the others' together


class ComputationError(ValueError):
    """The model's numbers cannot be held in double precision; the message names the field."""


class InputError(ValueError):
    """Bad input; the message names the file, line and column."""


def main(args) -> int:
    try:
        table = read_table(Path(args.file), args.measure, args.group)
        for warning in table.warnings:
            print(f"metaanalysis pool-csv: warning: {warning}", file=sys.stderr)
        with warnings.catch_warnings():  # overflow is reported below, as one line
            warnings.simplefilter("ignore", RuntimeWarning)
            out = pool(
                table,
                measure=args.measure,
                method=args.method,
                test=args.ci,
                level=args.level,
                transform=getattr(args, "transform", None),
                tau_prior=getattr(args, "tau_prior", None),
            )
        out = finite_output(out)
    except ComputationError as exc:
        print(f"metaanalysis pool-csv: {_one_line(exc)}", file=sys.stderr)
        return 1
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
    columns: dict[str, list]  # the layout's columns, parsed
    group: list[str] | None
    ignored: list[str]
    warnings: list[str] = dataclasses.field(default_factory=list)
    lines: list[int] = dataclasses.field(default_factory=list)  # each row's line in the file


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
            raise InputError(
                f"{name}: line 1 (header): missing column {col!r} "
                f"(--measure {measure} needs study,{','.join(LAYOUTS[measure])}"
                + (f"; --group needs {group!r}" if group else "")
                + ")"
            )
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise InputError(f"{name}: line 1 (header): column(s) {', '.join(map(repr, dup))} appear more than once")
    ignored = [h for h in header if h not in needed]
    study, group_vals, lines = [], [], []
    cols: dict[str, list] = {c: [] for c in LAYOUTS[measure]}
    row = 0
    for fields in reader:
        line = reader.line_num
        if not any(f.strip() for f in fields):
            continue  # blank line
        row += 1
        where = f"{name}: line {line} (data row {row})"
        if len(fields) != len(header):
            raise InputError(f"{where}: {len(fields)} fields, the header has {len(header)}")
        rec = dict(zip(header, (f.strip() for f in fields), strict=True))
        if not rec["study"]:
            raise InputError(f"{where}, column 'study': empty")
        study.append(rec["study"])
        lines.append(line)
        for col in LAYOUTS[measure]:
            cols[col].append(_number(rec[col], col, where))
        if group:
            if not rec[group]:
                raise InputError(f"{where}, column {group!r}: empty group label")
            group_vals.append(rec[group])
        _check_row(measure, {c: cols[c][-1] for c in cols}, where)
    if row == 0:
        raise InputError(f"{name}: no data rows after the header")
    if "vi" in cols:
        _check_weights(name, study, lines, cols["vi"])
    seen: dict[str, list[int]] = {}
    for s_name, line in zip(study, lines, strict=True):
        seen.setdefault(s_name, []).append(line)
    repeated = [
        f"study {s_name!r} appears on lines {', '.join(map(str, ls))}" for s_name, ls in seen.items() if len(ls) > 1
    ]
    notes = [f"{name}: {r} (pooled as separate rows: merge or rename them if they are one study)" for r in repeated]
    return Table(path, study, cols, group_vals if group else None, ignored, notes, lines)


def _check_weights(name: str, study: list[str], lines: list[int], vi: list[float], what: str = "column 'vi'") -> None:
    """Variances that double precision cannot weight: refused, not pooled into wrong numbers."""
    for line, v in zip(lines, vi, strict=True):
        if not VI_RANGE[0] <= v <= VI_RANGE[1]:
            raise InputError(
                f"{name}: line {line}, column 'vi': {v!r} is outside {VI_RANGE[0]:g} to "
                f"{VI_RANGE[1]:g}, the variances double precision can weight (1/vi^2); "
                "check the column (a variance, not a standard error?) or rescale yi and vi"
            )
    w = [1.0 / v for v in vi]
    top = max(range(len(w)), key=w.__getitem__)
    rest = math.fsum(w) - w[top]
    if len(w) > 1 and rest > 0 and w[top] / rest > MAX_WEIGHT_SHARE:
        raise InputError(
            f"{name}: line {lines[top]}, {what}: study {study[top]!r} (vi = {vi[top]:g}) would "
            f"carry {w[top] / rest:.3g} times the weight of all other studies together; the "
            "heterogeneity statistics lose every other study in double precision: check its vi"
        )


def _number(raw: str, col: str, where: str):
    if raw == "":
        raise InputError(f"{where}, column {col!r}: empty")
    # float() also takes 1_0, full-width and Arabic-Indic digits, nan and inf: read only what a person
    # would read as this number.
    if not _DECIMAL.fullmatch(raw):
        raise InputError(
            f"{where}, column {col!r}: {raw!r} is not a number written in plain decimal digits "
            "(0-9, one '.', an optional exponent such as 1e-4)"
        )
    if col in COUNT_COLUMNS:
        if not _COUNT.fullmatch(raw):
            raise InputError(f"{where}, column {col!r}: {raw!r} is not a non-negative whole number written in digits")
        value = int(raw.split(".")[0])
        if value > MAX_COUNT:
            raise InputError(
                f"{where}, column {col!r}: {raw} is larger than {MAX_COUNT:,} (2^53), the largest "
                "count the models hold exactly"
            )
        return value
    val = float(raw)
    if not math.isfinite(val):
        raise InputError(f"{where}, column {col!r}: {raw!r} is too large to be a number (it overflows)")
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


def pool(
    table: Table,
    *,
    measure: str,
    method: str,
    test: str,
    level: float,
    transform: str | None = None,
    tau_prior: str | None = None,
) -> dict:
    """Fit the overall model (and one per group) and return the JSON object."""
    if tau_prior is not None and method != "BAYES":
        raise InputError(f"--tau-prior is for --method BAYES; got --method {method}")
    if method == "GLMM" and measure != "PLO":
        raise InputError(f"--method GLMM fits the logit (PLO) model; got --measure {measure}")
    if method == "MH" and measure not in ("OR", "RR"):
        raise InputError(f"--method MH is implemented for --measure OR and RR; got {measure}")
    if transform is not None and measure != "GEN":
        raise InputError(f"--transform is for --measure GEN; {measure} has its own back-transformation")
    extra_notes = list(table.warnings)
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
        q, df, p, group_notes = group_difference(groups)
        notes = list(group_notes)
        qm = qmp = None
    else:
        es = _effects(table, measure, idx_all)
        sub = subgroups(
            es.yi,
            es.vi,
            table.group,
            method=method,
            test=test,
            level=level,
            measure=measure,
            studies=table.study,
            events=es.events,
            n=es.n,
        )
        groups, q, df, p = sub.groups, sub.Qbetween, sub.Qbetween_df, sub.Qbetween_p
        qm, qmp, notes = sub.QM_common_tau2, sub.QMp_common_tau2, list(sub.notes)
    out.update(
        subgroups={g: _result_dict(r) for g, r in groups.items()},
        Qbetween=q,
        Qbetween_df=df,
        Qbetween_p=p,
        QM_common_tau2=qm,
        QMp_common_tau2=qmp,
        subgroup_notes=notes,
    )
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

        es = _effects(table, measure, idx)
        if measure != "GEN":  # variances computed from counts (n = 2^53 next to n = 20)
            _check_weights(
                str(table.path),
                studies,
                [table.lines[i] for i in idx] if table.lines else [0] * len(idx),
                list(map(float, es.vi)),
                what="the variance from its counts",
            )
        return rma_effects(es, method=method, test=test, level=level, pi_method="metafor", transform=transform)

    return fit


def _fit_bayes(table: Table, idx: list[int], measure, level, transform, tau_prior):
    from metaanalysis.engine.bayes_priors import default_tau_prior, parse_tau_prior

    if tau_prior is None and measure == "GEN":
        raise InputError(
            "--method BAYES with --measure GEN needs --tau-prior halfnormal:SCALE "
            "(there is no default scale for a generic yi; 0.5 suits log ratios such as log HRs)"
        )
    prior = parse_tau_prior(tau_prior) if tau_prior is not None else default_tau_prior(measure)
    if measure == "PLO":
        from metaanalysis.engine.bayes_binomial import rma_bayes_binomial

        return rma_bayes_binomial(
            [table.columns["events"][i] for i in idx],
            [table.columns["n"][i] for i in idx],
            studies=[table.study[i] for i in idx],
            tau_prior=prior,
            level=level,
        )
    from metaanalysis.engine.bayes import rma_bayes_effects

    return rma_bayes_effects(_effects(table, measure, idx), tau_prior=prior, level=level, transform=transform)


def _effects(table: Table, measure: str, idx: list[int]):
    c = {k: [v[i] for i in idx] for k, v in table.columns.items()}
    return escalc(measure, studies=[table.study[i] for i in idx], **c)


def _result_dict(res: MetaResult) -> dict:
    d = res.to_dict()
    for key in ("I2", "I2_ci_lb", "I2_ci_ub"):  # a percentage: rounding must not leave [0, 100]
        if isinstance(d.get(key), float) and math.isfinite(d[key]):
            d[key] = min(100.0, max(0.0, d[key]))
    if res.method == "GLMM" and "QE_LRT" in res.provenance:
        d.update(QE_LRT=res.provenance["QE_LRT"], QEp_LRT=res.provenance["QEp_LRT"])
    return d


def finite_output(out: dict) -> dict:
    """The JSON object with no inf or NaN: a back-transform beyond the largest double becomes null
    (noted); any other non-finite number is a ComputationError naming the field."""

    def walk(d: dict, where: str) -> None:
        overflowed = []
        for key, value in d.items():
            if isinstance(value, dict):
                walk(value, f"{where}{key}.")
            elif isinstance(value, (float, np.floating)) and not math.isfinite(value):
                if key.startswith("bt_") and not math.isnan(value):
                    overflowed.append(key)
                else:
                    raise ComputationError(
                        f"{where}{key} is {value}: the model cannot be computed in double "
                        "precision for this table (check the scale of yi and vi)"
                    )
        for key in overflowed:
            d[key] = None
        if overflowed:
            d["notes"] = [
                *d.get("notes", []),
                f"{', '.join(overflowed)}: the {d.get('transform')} back-transform "
                "exceeds the largest double (about 1.8e308) and is shown as null; the values on the "
                "analysis scale (b, ci_lb, ci_ub, ...) are exact",
            ]

    walk(out, "")
    return out


def _plain(x):
    """json.dumps fallback for numpy scalars."""
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"cannot write {type(x).__name__} as JSON")


def _one_line(exc: Exception) -> str:
    # The engine names its own arguments (test='knha_adhoc'); the user typed --ci.
    text = re.sub(r"\btest='(\w+)'", r"--ci \1", " ".join(str(exc).split()))
    return re.sub(r"(--ci \w+ or )'(\w+)'", r"\1--ci \2", text)


__all__ = ["main", "read_table", "pool", "finite_output", "InputError", "ComputationError"]
