"""`metaanalysis pool-csv FILE --measure M --method METHOD --ci {z,knha,knha_adhoc} [--group COL] --json`

Reads one CSV table, pools it, prints ONE JSON object: the fields of
metafor_reference.json (`MetaResult.to_dict()`), and with --group also
`subgroups` (one object per group, in order of first appearance), `Qbetween`,
`Qbetween_df`, `Qbetween_p`, `QM_common_tau2`, `QMp_common_tau2`.

Layouts (the columns that must be present; others are reported in `notes`):
    PR, PLO, PAS, PFT   study,events,n        (--method GLMM or BAYES-BN: PLO only)
    OR, RR, RD          study,ai,n1i,ci,n2i   (--method MH: Mantel-Haenszel, OR and RR)
    GEN                 study,yi,vi

Methods (`method_names()`, read from the engine's registries, `engine.estimators.ESTIMATORS`
and `engine.methods.METHODS`, never listed here):
- every tau^2 estimator (FE, DL, REML, ...): inverse-variance pooling of the measure's yi, vi
  (escalc: for PLO 0.5 added to a 0 %/100 % arm, as metafor and the review's primary rows do);
- GLMM: the binomial-normal random-intercept model (PLO);
- MH: Mantel-Haenszel (OR, RR);
- BAYES-NN: the Bayesian normal-normal model on the same yi, vi as the inverse-variance fits
  (as R bayesmeta), half-normal prior on tau (`--tau-prior halfnormal:SCALE`; the measure's
  default, GEN needs one), flat prior on mu;
- BAYES-BN: the Bayesian binomial-normal model on events/n themselves (PLO only).
  A bare `--method BAYES` names no model and is refused with both names.
The Bayesian fits print the same names where they apply (b = posterior median, ci_lb/ci_ub =
equal-tailed credible interval, pi_lb/pi_ub = posterior predictive interval, tau2 = posterior
median of tau^2, bt_*) plus the Bayesian ones (tau_prior, ci_shortest_lb, tau, ...);
frequentist fields (zval, pval, QE, I2) are not printed.

k = 1 (an inverse-variance fit of one study, or one group): as metafor's rma() does (R/rma.uni.r:
tau^2 set to 0, QE = 0, QEp = 1, I2 = 0, H2 = 1 when k equals the number of coefficients, and
test = "z"), so the prediction interval is the confidence interval; `notes` says so.
Freeman-Tukey (PFT) output carries a caution in `notes` (Schwarzer et al. 2019).

Numbers are ASCII decimal (`-0.5`, `1e-4`); `1_0`, full-width or Arabic-Indic digits,
`nan`/`inf` are refused; counts are whole numbers written in digits, at most 2^53.

Bad input (a file that is not UTF-8, empty file, missing column, a field beyond the csv
module's limit, a value that is not a number, events > n, vi <= 0, yi beyond what double
precision can square and weight, a prior scale or level out of range, ...) ends with ONE line on
stderr naming the line and column, and exit code 2. A model that cannot be fitted (no
convergence), or whose numbers cannot be held in double precision, ends with one line and exit
code 1: the JSON never holds inf or NaN (an `exp` back-transform beyond the largest double is
null, with a note). No Python traceback is ever printed. A study name used twice is pooled as two
rows, with a warning on stderr and in `notes`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from metaanalysis.engine.effects import escalc
from metaanalysis.engine.estimators import ESTIMATORS, ConvergenceError
from metaanalysis.engine.glmm import GLMMConvergenceError, rma_glmm
from metaanalysis.engine.mantel_haenszel import rma_mh
from metaanalysis.engine.methods import BAYES_BN, BAYES_NN, GLMM, METHODS, MH, SINGLE
from metaanalysis.engine.results import MetaResult
from metaanalysis.engine.subgroups import group_difference, subgroups
from metaanalysis.evidence.reading import decode_utf8
from metaanalysis.presentation.safe_text import printable

PROG = "metaanalysis pool-csv"
LAYOUTS = {
    **{m: ("events", "n") for m in ("PR", "PLO", "PAS", "PFT")},
    **{m: ("ai", "n1i", "ci", "n2i") for m in ("OR", "RR", "RD")},
    "GEN": ("yi", "vi"),
}
COUNT_COLUMNS = {"events", "n", "ai", "n1i", "ci", "n2i"}
_DECIMAL = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII)
_COUNT = re.compile(r"[0-9]+(?:\.0*)?", re.ASCII)
_CSV_LINES = re.compile(r"\r\n|[\r\n]")  # the line breaks the csv module counts in line_num
MAX_COUNT = 2**53  # whole numbers a double holds exactly
VI_RANGE = (1e-150, 1e150)  # 1/vi^2 must neither overflow nor vanish
MAX_YI = 1e75  # tau^2 is of the order of the squared spread of yi; its square, 1e300, must stay finite
MAX_Z = 1e75  # |yi| / sqrt(vi): the squared standardised effects must stay finite
MAX_WEIGHT_SHARE = 1e10  # one study's weight over all the others' together
TAU_SCALE_RANGE = (1e-10, 1e10)  # half-normal scales whose support grid (up to ~5e7 scales) squares finitely
MAX_BN_STUDIES = 200  # BAYES-BN: memory and time grow with k (about 12 MB and 0.4 s per study)
FREEMAN_TUKEY_CAUTION = (
    "Freeman-Tukey (PFT): the back-transformation uses one harmonic mean of n for every study; with "
    "studies of different sizes it can give misleading pooled proportions and intervals, even at the "
    "ends of [0, 1] (Schwarzer et al. 2019, Res Synth Methods 10:476): compare with PLO or GLMM"
)


def method_names() -> list[str]:
    """The --method names pool-csv accepts: every tau^2 estimator, then every registered model that
    pools a table itself (GLMM, the Bayesian ones, MH). Registry methods bound to one effect-size
    scale (the review's PLO, PFT, ...) are --measure here; a class with one study is no method."""
    return list(ESTIMATORS) + [name for name, m in METHODS.items() if m.measure is None and name != SINGLE]


def method_error(name: str) -> str | None:
    """Why `name` is not a --method (None when it is one)."""
    names = method_names()
    if name in names:
        return None
    if name.upper().startswith("BAYES"):
        return (
            f"--method {name} names no model: use {BAYES_NN} ({METHODS[BAYES_NN].label}, on the yi, vi of "
            f"--measure) or {BAYES_BN} ({METHODS[BAYES_BN].label}, on events/n; --measure PLO)"
        )
    upper = [n for n in names if n.upper() == name.upper()]
    hint = f" (did you mean {upper[0]}?)" if upper else ""
    return f"--method {name!r} is not a method{hint}; choose from {', '.join(names)}"


class ComputationError(ValueError):
    """The model's numbers cannot be held in double precision; the message names the field."""


class InputError(ValueError):
    """Bad input; the message names the file, line and column."""


def main(args) -> int:
    try:
        return _main(args)
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except MemoryError:
        _say(f"not enough memory to pool this table with --method {getattr(args, 'method', '?')}")
        return 1
    except RecursionError:
        _say("the table could not be pooled (nesting too deep)")
        return 1
    except Exception as exc:  # the last resort: one line, never a traceback
        _say(f"could not pool this table: {_one_line(exc)} (please report this with the file)")
        return 1


def _main(args) -> int:
    try:
        check_options(args)
        table = read_table(Path(args.file), args.measure, args.group)
        for warning in table.warnings:
            _say(f"warning: {warning}")
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # overflow is reported below, as one line
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
        text = json.dumps(out, allow_nan=False, default=_plain)
    except ComputationError as exc:
        _say(_one_line(exc))
        return 1
    except (GLMMConvergenceError, ConvergenceError) as exc:
        _say(f"model could not be fitted: {_one_line(exc)}")
        return 1
    except (InputError, ValueError) as exc:
        _say(_one_line(exc))
        return 2
    except (RuntimeError, FloatingPointError, ZeroDivisionError, OverflowError, np.linalg.LinAlgError) as exc:
        _say(f"model could not be fitted: {_one_line(exc)}")
        return 1
    print(text)
    return 0


def check_options(args) -> None:
    """The options alone: method name, level, prior, and which measure each method takes."""
    method, measure = args.method, args.measure
    if (problem := method_error(method)) is not None:
        raise InputError(problem)
    level = args.level
    if not (isinstance(level, float) and math.isfinite(level) and 0 < level < 1):
        raise InputError(f"--level {level}: give the interval's coverage as a number between 0 and 1 (e.g. 0.95)")
    bayesian = method in METHODS and METHODS[method].bayesian
    tau_prior = getattr(args, "tau_prior", None)
    if tau_prior is not None and not bayesian:
        raise InputError(f"--tau-prior is for --method {BAYES_NN} or {BAYES_BN}; got --method {method}")
    if tau_prior is not None:
        from metaanalysis.engine.bayes_priors import parse_tau_prior

        scale = parse_tau_prior(tau_prior).scale
        lo, hi = TAU_SCALE_RANGE
        if not lo <= scale <= hi:
            raise InputError(
                f"--tau-prior {tau_prior}: the scale must lie between {lo:g} and {hi:g} (on the scale of yi: "
                "1.0 suits a logit, 0.5 a log ratio); beyond that tau^2 cannot be computed in double precision"
            )
    if method == GLMM and measure != "PLO":
        raise InputError(f"--method {GLMM} fits the logit (PLO) model; got --measure {measure}")
    if method == BAYES_BN and measure != "PLO":
        raise InputError(
            f"--method {BAYES_BN} fits the binomial-normal model on events/n (--measure PLO); got --measure "
            f"{measure} (--method {BAYES_NN} pools the yi, vi of any measure)"
        )
    if method == MH and measure not in ("OR", "RR"):
        raise InputError(f"--method {MH} is implemented for --measure OR and RR; got {measure}")
    if getattr(args, "transform", None) is not None and measure != "GEN":
        raise InputError(f"--transform is for --measure GEN; {measure} has its own back-transformation")


@dataclasses.dataclass
class Table:
    path: Path
    study: list[str]
    columns: dict[str, list]  # the layout's columns, parsed
    group: list[str] | None
    ignored: list[str]
    warnings: list[str] = dataclasses.field(default_factory=list)
    lines: list[int] = dataclasses.field(default_factory=list)  # each row's line in the file


def read_text(path: Path) -> str:
    """The file as text: UTF-8 (a byte-order mark is dropped), else one line naming where it is not."""
    name = printable(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a folder, not a CSV file") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot be read ({exc.strerror})") from None
    text, problems = decode_utf8(data.removeprefix(b"\xef\xbb\xbf"), _CSV_LINES)
    if text is None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more line(s))" if len(problems) > 1 else ""
        raise InputError(f"{name}: line {first.line}: {first.message}{more}")
    if (nul := text.find("\x00")) >= 0:
        line = len(_CSV_LINES.findall(text, 0, nul)) + 1
        column = nul - max(text.rfind("\n", 0, nul), text.rfind("\r", 0, nul))
        utf16 = text.count("\x00") * 4 >= len(text)
        raise InputError(
            f"{name}: line {line}, column {column} (character): a NUL character"
            + (
                " (every other byte: UTF-16 text saved without a byte-order mark?): save the file as UTF-8"
                if utf16
                else ", which no table of studies holds (is this a CSV text file?)"
            )
        )
    return text


def read_table(path: Path, measure: str, group: str | None) -> Table:
    """Parse and check the CSV; every problem is an InputError naming line and column."""
    name = printable(path)
    text = read_text(path)
    if not text.strip():
        raise InputError(f"{name}: empty file (expected a header line: study,{','.join(LAYOUTS[measure])})")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = _rows(reader, name)
    header_line, header = next(rows)
    header = [h.strip() for h in header]
    needed = ("study",) + LAYOUTS[measure] + ((group,) if group else ())
    for col in needed:
        if col not in header:
            raise InputError(
                f"{name}: line {header_line} (header): missing column {_short(col)!r} "
                f"(--measure {measure} needs study,{','.join(LAYOUTS[measure])}"
                + (f"; --group needs {_short(group)!r}" if group else "")
                + ")"
            )
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise InputError(
            f"{name}: line {header_line} (header): column(s) {', '.join(repr(_short(d)) for d in dup)} "
            "appear more than once"
        )
    ignored = [h for h in header if h not in needed]
    study, group_vals, lines = [], [], []
    cols: dict[str, list] = {c: [] for c in LAYOUTS[measure]}
    row = 0
    for line, fields in rows:
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
                raise InputError(f"{where}, column {_short(group)!r}: empty group label")
            if rec[group].lower() == "nan":  # the engine, like pandas, reads it as a missing label
                raise InputError(
                    f"{where}, column {_short(group)!r}: {rec[group]!r} reads as a missing value, not a group "
                    "label: rename the group"
                )
            group_vals.append(rec[group])
        _check_row({c: cols[c][-1] for c in cols}, where)
    if row == 0:
        raise InputError(f"{name}: no data rows after the header")
    if "vi" in cols:
        _check_weights(name, study, lines, cols["vi"])
        _check_effects(name, lines, cols["yi"], cols["vi"])
    seen: dict[str, list[int]] = {}
    for s_name, line in zip(study, lines, strict=True):
        seen.setdefault(s_name, []).append(line)
    repeated = [f"study {_quoted(s_name)} appears on lines {_lines(ls)}" for s_name, ls in seen.items() if len(ls) > 1]
    notes = [f"{name}: {r} (pooled as separate rows: merge or rename them if they are one study)" for r in repeated]
    return Table(path, study, cols, group_vals if group else None, ignored, notes, lines)


def _rows(reader, name: str):
    """(line where the row starts, fields) for each row; a csv error names its line."""
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = max(reader.line_num, start)
            message = str(exc)
            if "field larger than field limit" in message:
                message = (
                    f"a field longer than the csv module's limit of {csv.field_size_limit():,} characters "
                    "(a study name or a number that long is not a table of studies; an unclosed quote "
                    "also makes one field of the rest of the file)"
                )
            raise InputError(f"{name}: line {line}: cannot be read as CSV: {message}") from None
        yield start, fields


def _check_effects(name: str, lines: list[int], yi: list[float], vi: list[float]) -> None:
    """Estimates whose squares (and squared standardised values) double precision cannot hold."""
    for line, y, v in zip(lines, yi, vi, strict=True):
        if abs(y) > MAX_YI:
            raise InputError(
                f"{name}: line {line}, column 'yi': {y!r} is beyond +-{MAX_YI:g}, which double precision "
                "cannot square and weight: check the column (log ratios are within +-50) or rescale yi and vi"
            )
        if v > 0 and abs(y) / math.sqrt(v) > MAX_Z:
            raise InputError(
                f"{name}: line {line}, column 'yi': {y!r} is {abs(y) / math.sqrt(v):.3g} standard errors "
                f"from 0 (vi = {v!r}), beyond what double precision can square: check yi and vi"
            )


def _check_weights(name: str, study: list[str], lines: list[int], vi: list[float], what: str = "column 'vi'") -> None:
    """Variances that double precision cannot weight: refused, not pooled into wrong numbers."""
    for line, v in zip(lines, vi, strict=True):
        if not VI_RANGE[0] <= v <= VI_RANGE[1]:
            raise InputError(
                f"{name}: line {line}, {what}: {v!r} is outside {VI_RANGE[0]:g} to "
                f"{VI_RANGE[1]:g}, the variances double precision can weight (1/vi^2); "
                "check the column (a variance, not a standard error?) or rescale yi and vi"
            )
    w = [1.0 / v for v in vi]
    top = max(range(len(w)), key=w.__getitem__)
    rest = math.fsum(w) - w[top]
    if len(w) > 1 and rest > 0 and w[top] / rest > MAX_WEIGHT_SHARE:
        raise InputError(
            f"{name}: line {lines[top]}, {what}: study {_quoted(study[top])} (vi = {vi[top]:g}) would "
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
            f"{where}, column {col!r}: {_quoted(raw)} is not a number written in plain decimal digits "
            "(0-9, one '.', an optional exponent such as 1e-4)"
        )
    if col in COUNT_COLUMNS:
        if not _COUNT.fullmatch(raw):
            raise InputError(
                f"{where}, column {col!r}: {_quoted(raw)} is not a non-negative whole number written in digits"
            )
        digits = raw.split(".")[0].lstrip("0") or "0"
        # length first: int() of more than 4,300 digits is itself refused by Python
        if len(digits) > 16 or int(digits) > MAX_COUNT:
            raise InputError(
                f"{where}, column {col!r}: {_short(raw)} is larger than {MAX_COUNT:,} (2^53), the largest "
                "count the models hold exactly"
            )
        return int(digits)
    val = float(raw)
    if not math.isfinite(val):
        raise InputError(f"{where}, column {col!r}: {_quoted(raw)} is too large to be a number (it overflows)")
    if val == 0.0 and re.split("[eE]", raw)[0].strip("+-0."):
        raise InputError(f"{where}, column {col!r}: {_quoted(raw)} is too small to be a number (it underflows to 0)")
    return val


def _check_row(rec: dict, where: str) -> None:
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
    check_options(
        SimpleNamespace(method=method, measure=measure, level=level, tau_prior=tau_prior, transform=transform)
    )
    bayesian = METHODS[method].bayesian if method in METHODS else False
    if method == BAYES_BN and len(table.study) > MAX_BN_STUDIES:
        raise InputError(
            f"--method {BAYES_BN} is computed for up to {MAX_BN_STUDIES} studies (its memory and time grow with "
            f"each study: 200 take about 2.4 GB and 80 s); this table has {len(table.study):,}: use --method "
            f"{BAYES_NN} (the normal-normal model, which takes 100,000)"
        )
    extra_notes = list(table.warnings)
    if table.ignored:
        shown = ", ".join(repr(_short(c)) for c in table.ignored[:10])
        more = f", ... ({len(table.ignored):,} columns)" if len(table.ignored) > 10 else ""
        extra_notes.append(f"columns not used: {shown}{more}")
    if method in (GLMM, MH) and test != "z":
        extra_notes.append(f"--ci {test} ignored: the {method} model uses a Wald z interval")
    if bayesian:
        extra_notes.append("--ci ignored: the Bayesian model reports equal-tailed credible intervals")
    if measure == "PFT":
        extra_notes.append(FREEMAN_TUKEY_CAUTION)

    fit_one = _fitter(measure, method, test, level, transform, tau_prior)
    idx_all = list(range(len(table.study)))
    overall = fit_one(table, idx_all)
    overall = dataclasses.replace(overall, notes=overall.notes + tuple(extra_notes))
    out = _result_dict(overall)
    if table.group is None:
        return out
    if method not in ESTIMATORS:
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
        if method in (BAYES_NN, BAYES_BN):
            return _fit_bayes(table, idx, measure, method, level, transform, tau_prior)
        if method == GLMM:
            return rma_glmm(c["events"], c["n"], studies=studies, level=level, nAGQ=7)
        if method == MH:
            return rma_mh(c["ai"], c["n1i"], c["ci"], c["n2i"], measure=measure, level=level, studies=studies)
        from metaanalysis.engine.rma import rma_effects

        es = _effects(table, measure, idx)
        if measure != "GEN":  # variances computed from counts (n = 2^53 next to n = 20)
            _check_weights(
                printable(table.path),
                studies,
                [table.lines[i] for i in idx] if table.lines else [0] * len(idx),
                list(map(float, es.vi)),
                what="the variance from its counts",
            )
        return rma_effects(es, method=method, test=test, level=level, pi_method="metafor", transform=transform)

    return fit


def _fit_bayes(table: Table, idx: list[int], measure, method, level, transform, tau_prior):
    from metaanalysis.engine.bayes_priors import default_tau_prior, parse_tau_prior

    if tau_prior is None and measure == "GEN":
        raise InputError(
            f"--method {method} with --measure GEN needs --tau-prior halfnormal:SCALE "
            "(there is no default scale for a generic yi; 0.5 suits log ratios such as log HRs)"
        )
    prior = parse_tau_prior(tau_prior) if tau_prior is not None else default_tau_prior(measure)
    if method == BAYES_BN:
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
    """escalc on the rows `idx`: metafor's defaults (for PLO 0.5 added to a 0 %/100 % arm only,
    no correction for PFT and PAS), the same call as the review's proportion rows."""
    c = {k: [v[i] for i in idx] for k, v in table.columns.items()}
    return escalc(measure, studies=[table.study[i] for i in idx], add=None, to="only0", **c)


K1_NOTE = (
    "k = 1: as metafor's rma() does, tau^2 is set to 0, Q = 0 (p = 1), I^2 = 0 and H^2 = 1, and the "
    "prediction interval is the confidence interval; one study says nothing about heterogeneity"
)


def _result_dict(res) -> dict:
    d = res.to_dict()
    for key in ("I2", "I2_ci_lb", "I2_ci_ub"):  # a percentage: rounding must not leave [0, 100]
        if isinstance(d.get(key), float) and math.isfinite(d[key]):
            d[key] = min(100.0, max(0.0, d[key]))
    if res.method == GLMM and "QE_LRT" in res.provenance:
        d.update(QE_LRT=res.provenance["QE_LRT"], QEp_LRT=res.provenance["QEp_LRT"])
    if res.method in ESTIMATORS and d.get("k") == 1:
        d.update(tau2=0.0, QE=0.0, QEp=1.0, I2=0.0, H2=1.0, pi_lb=d["ci_lb"], pi_ub=d["ci_ub"])
        if d.get("bt_ci_lb") is not None:
            d.update(bt_pi_lb=d["bt_ci_lb"], bt_pi_ub=d["bt_ci_ub"])
        d["notes"] = [K1_NOTE] + [n for n in d["notes"] if not n.startswith("heterogeneity not estimable with k = 1")]
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


def _short(text: object, limit: int = 60) -> str:
    """A name or value from the file, shortened for a one-line message."""
    s = str(text)
    return s if len(s) <= limit else f"{s[:40]}...{s[-10:]} ({len(s):,} characters)"


def _quoted(text: str, limit: int = 60) -> str:
    """repr() of a value from the file, shortened (its length outside the quotes)."""
    return repr(text) if len(text) <= limit else f"{text[:40]!r}...{text[-10:]!r} ({len(text):,} characters)"


def _lines(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:10])) + (f", ... ({len(numbers)} lines)" if len(numbers) > 10 else "")


def _say(message: str) -> None:
    """One line on stderr, control characters from file names or cells shown as escapes."""
    print(f"{PROG}: {printable(' '.join(message.split()))}", file=sys.stderr)


def _one_line(exc: BaseException) -> str:
    # The engine names its own arguments (test='knha_adhoc', Control(...)); the user typed --ci.
    text = re.sub(r"\btest='(\w+)'", r"--ci \1", " ".join(str(exc).split()))
    text = re.sub(r"(--ci \w+ or )'(\w+)'", r"\1--ci \2", text)
    text = re.sub(
        r"; try Control\([^)]*\)",
        " (the stopping rule is metafor's, a change below 1e-5: rescale yi and vi, or try --method DL or PM)",
        text,
    )
    if "Chebyshev nodes" in text:  # the posterior's support is too wide to interpolate
        text += " (the posterior of tau is too spread out: is the prior scale far wider than the spread of yi?)"
    return text if len(text) <= 500 else text[:480] + " ..."


__all__ = [
    "main",
    "read_table",
    "read_text",
    "pool",
    "check_options",
    "method_names",
    "method_error",
    "finite_output",
    "InputError",
    "ComputationError",
]
