"""Reader-facing tables: results as a paper prints them.

Numbers are computed elsewhere (`pooling`, `landmarks`, `comparisons`); this module only picks
the columns a reader needs, labels them and formats every cell as text through `labels`
("47.7 % (39.9-55.6)", citations for studies, a dash for what is missing). The functions return
DataFrames of text; `paper_table(frame)` (from `style`) shows one as a journal table.
"""

from __future__ import annotations

import pandas as pd

from metaanalysis.engine.methods import METHODS
from metaanalysis.evidence.vocabulary import outcome_labels, regimen_labels
from metaanalysis.presentation.labels import (
    MISSING,
    POPULATION_LABELS,
    cite,
    cite_list,
    fmt_count,
    fmt_interval,
    fmt_number,
    fmt_p,
    fmt_percent_ci,
    fmt_ratio_ci,
    is_missing,
    population_label,
    symbols,
)
from metaanalysis.presentation.style import paper_table
from metaanalysis.review.result import Review

__all__ = [
    "analysis_title",
    "readable",
    "by_method",
    "by_variant",
    "median_table",
    "hazard_ratio_table",
    "landmark_table",
    "comparison_table",
    "paper_table",
    "METHOD_LABELS",
    "heterogeneity_cell",
]

METHOD_LABELS = {name: m.label for name, m in METHODS.items()}


def analysis_title(analysis) -> str:
    """E.g. "Overall response (CR + PR) after CAR-T failure"."""
    population = population_label(analysis)
    outcome = outcome_labels().get(analysis.outcome, analysis.outcome)
    return symbols(f"{outcome} {population[0].lower()}{population[1:]}")


def _blank_repeats(column: pd.Series) -> pd.Series:
    """A label printed once per block of rows, as journal tables group them."""
    return column.where(column.ne(column.shift()), "")


def readable(
    pooled: pd.DataFrame, citations: dict[str, str] | None = None, arms=None, populations: dict | None = None
) -> pd.DataFrame:
    """Pooled rows (results/pooled.csv columns) as a table of labels and percentages;
    `populations`: analysis id -> population label (`population_label`), else by population."""
    if pooled.empty:
        return pd.DataFrame()
    classes, outcomes, cites = regimen_labels(), outcome_labels(), citations or {}
    estimate = [
        fmt_percent_ci(r.estimate, r.ci_lb, r.ci_ub)
        if not is_missing(r.estimate)
        else f"not estimable ({r.error})"
        if not is_missing(r.error)
        else "not estimable"
        for r in pooled.itertuples()
    ]
    table = pd.DataFrame(
        {
            "Population": pooled["population"].map(POPULATION_LABELS).fillna(pooled["population"])
            if populations is None
            else pooled["analysis"].map(populations).fillna(pooled["population"]),
            "Outcome": pooled["outcome"].map(outcomes).fillna(pooled["outcome"]).map(symbols),
            "Regimen class": pooled["regimen_class"].map(classes).fillna(pooled["regimen_class"]),
            "Method": pooled["method"].map(lambda m: METHOD_LABELS.get(m, m)),
            "k": pooled["k"].map(fmt_count),
            "N": pooled["n_total"].map(fmt_count),
            "Estimate (95 % interval)": estimate,
            "95 % prediction interval": [fmt_interval(r.pi_lb, r.pi_ub) for r in pooled.itertuples()],
            "Heterogeneity": [heterogeneity_cell(r) for _, r in pooled.iterrows()],
            "Studies": pooled["studies"].map(lambda s: cite_list(s, cites, arms)),
        }
    ).reset_index(drop=True)
    for col in ("Population", "Outcome"):
        table[col] = _blank_repeats(table[col])
    return table


def heterogeneity_cell(row) -> str:
    """The row's heterogeneity in its model's terms: τ with its credible interval for a Bayesian
    estimate ("τ = 0.26 (0.01-1.29)"), τ² and I² otherwise; a dash for a single study."""
    method = METHODS.get(row.get("method"))
    if method is not None and method.bayesian and not is_missing(row.get("tau")):
        interval = fmt_interval(row.get("tau_ci_lb"), row.get("tau_ci_ub"), scale=1.0, decimals=2)
        return f"τ = {fmt_number(row['tau'], 2)} ({interval})"
    parts = []
    if not is_missing(row.get("tau2")):
        parts.append(f"τ² = {fmt_number(row['tau2'], 3)}")
    if not is_missing(row.get("I2")):
        parts.append(f"I² = {fmt_number(row['I2'], 0)} %")
    return "; ".join(parts) or MISSING


def _cell(r) -> str:
    return fmt_percent_ci(r.estimate, r.ci_lb, r.ci_ub)


def by_method(review: Review, analyses=None) -> pd.DataFrame:
    """Pooled classes (k >= 2) side by side under every fitted method; the primary one marked."""
    ids = None if analyses is None else {a.id for a in analyses}
    table = review.pooled_table()
    table = table[(table["k"] >= 2) & (table["analysis"].isin(ids) if ids is not None else True)]
    if table.empty:
        return pd.DataFrame()
    order = list(dict.fromkeys(table["method"]))
    cell = table.apply(lambda r: _cell(r) + (" (primary)" if r["primary"] else ""), axis=1)
    wide = (
        table.assign(cell=cell)
        .pivot_table(
            index=["analysis", "regimen_class", "k"], columns="method", values="cell", aggfunc="first", sort=False
        )
        .reindex(columns=order)
        .reset_index()
    )
    return _label_keys(wide.rename(columns=METHOD_LABELS), review.plan.analyses, None).fillna(MISSING)


def _label_keys(wide: pd.DataFrame, analyses, titles) -> pd.DataFrame:
    titles = titles or {a.id: analysis_title(a) for a in analyses}
    wide.insert(0, "Analysis", _blank_repeats(wide.pop("analysis").map(lambda a: titles.get(a, a))))
    wide.insert(1, "Regimen class", wide.pop("regimen_class").map(lambda c: regimen_labels().get(c, c)))
    if "k" in wide:
        wide["k"] = wide["k"].map(fmt_count)
    wide.columns.name = None
    return wide


def by_variant(review: Review) -> pd.DataFrame:
    """Each pooled class's primary estimate (as the pipeline decided it: the method its k calls for
    in that variant) under the primary analysis and every sensitivity variant."""
    table = pd.concat([review.pooled_table(), review.sensitivity_table()], ignore_index=True)
    table = table[table["primary"].astype(bool)]
    pooled_keys = table.loc[
        (table["variant"] == "primary") & (table["k"] >= 2), ["analysis", "regimen_class"]
    ].drop_duplicates()
    table = table.merge(pooled_keys, on=["analysis", "regimen_class"])
    if table.empty:
        return pd.DataFrame()
    cell = table.apply(lambda r: f"{_cell(r)}, k = {r.k}, {METHOD_LABELS.get(r.method, r.method)}", axis=1)
    labels = {"primary": "Primary analysis", **{v.id: v.label for v in review.plan.sensitivity}}
    wide = table.assign(cell=cell, variant=table["variant"].map(labels)).pivot_table(
        index=["analysis", "regimen_class"], columns="variant", values="cell", aggfunc="first", sort=False
    )
    wide = wide.reindex(columns=[c for c in labels.values() if c in wide.columns]).reset_index()
    return _label_keys(wide, review.plan.analyses, None).fillna("no study left")


# -- survival --------------------------------------------------------------------------------
def _study(row, citations) -> str:
    return cite(row["study"], citations or {})


def _class(row) -> str:
    label = row.get("subgroup_label") if not is_missing(row.get("subgroup_label")) else row.get("arm_label")
    return MISSING if is_missing(label) else str(label)


def median_table(tte: pd.DataFrame, citations: dict[str, str] | None = None) -> pd.DataFrame:
    """Medians: endpoint, median (months), its CI or range first; study and arm after."""
    rows = tte[tte["kind"] == "median"]
    out = []
    for _, r in rows.iterrows():
        if bool(r["not_reached"]) if not is_missing(r["not_reached"]) else False:
            median = "not reached"
        else:
            median = fmt_number(r["value"], 1)
        if not is_missing(r["ci_lb"]) and not is_missing(r["ci_ub"]):
            spread = f"95 % CI {fmt_number(r['ci_lb'], 1)} to {fmt_number(r['ci_ub'], 1)}"
        elif not is_missing(r["ci_lb"]):
            spread = f"95 % CI from {fmt_number(r['ci_lb'], 1)} (upper limit not reported)"
        elif not is_missing(r["range_lb"]):
            spread = f"range {fmt_number(r['range_lb'], 1)} to {fmt_number(r['range_ub'], 1)}"
        else:
            spread = MISSING
        out.append(
            {
                "Endpoint": r["endpoint"],
                "Median (months)": median,
                "95 % CI or range": spread,
                "Study": _study(r, citations),
                "Arm": _class(r),
                "Regimen class": MISSING if is_missing(r["regimen_class_label"]) else r["regimen_class_label"],
                "Arm N": fmt_count(r["arm_n"]),
                "Clock starts at": MISSING if is_missing(r["start"]) else r["start"],
            }
        )
    return pd.DataFrame(out)


def hazard_ratio_table(tte: pd.DataFrame, citations: dict[str, str] | None = None) -> pd.DataFrame:
    rows = tte[tte["kind"] == "hazard_ratio"]
    return pd.DataFrame(
        [
            {
                "Endpoint": r["endpoint"],
                "HR (95 % CI)": fmt_ratio_ci(r["value"], r["ci_lb"], r["ci_ub"]),
                "p": r["p_printed"] if not is_missing(r["p_printed"]) else fmt_p(r["p_value"]),
                "Comparison": MISSING if is_missing(r["comparison"]) else r["comparison"],
                "Model": MISSING if is_missing(r["model"]) else r["model"],
                "Study": _study(r, citations),
                "Arm": _class(r),
            }
            for _, r in rows.iterrows()
        ]
    )


def landmark_table(tte: pd.DataFrame, citations: dict[str, str] | None = None) -> pd.DataFrame:
    rows = tte[tte["kind"] == "landmark"]
    out = []
    for _, r in rows.iterrows():
        pct = None if is_missing(r["percent"]) else r["percent"] / 100
        lb = None if is_missing(r["ci_lb"]) else r["ci_lb"] / 100
        ub = None if is_missing(r["ci_ub"]) else r["ci_ub"] / 100
        out.append(
            {
                "Endpoint": r["endpoint"],
                "At (months)": fmt_number(r["months"], 0),
                "Rate (95 % CI)": fmt_percent_ci(pct, lb, ub),
                "Study": _study(r, citations),
                "Arm": _class(r),
                "Arm N": fmt_count(r["arm_n"]),
            }
        )
    return pd.DataFrame(out)


def comparison_table(
    table: pd.DataFrame,
    arm_names: tuple[str, str] = ("Experimental", "Control"),
    citations: dict[str, str] | None = None,
) -> pd.DataFrame:
    """A two-arm comparison (living.comparisons table): events/total per arm, OR and RD with CI."""
    if table.empty:
        return pd.DataFrame()
    exp, ctrl = arm_names
    out = []
    for outcome, part in table.groupby("outcome", sort=False):
        first = part.iloc[0]
        row = {
            "Outcome": symbols(outcome_labels().get(outcome, outcome)),
            f"{exp}, events/N": f"{first['events_exp']}/{first['n_exp']}",
            f"{ctrl}, events/N": f"{first['events_ctrl']}/{first['n_ctrl']}",
        }
        for _, r in part.iterrows():
            if r["measure"] == "RD":
                row["Risk difference (95 % CI)"] = fmt_percent_ci(r["estimate"], r["ci_lb"], r["ci_ub"]).replace(
                    " %", " points", 1
                )
            else:
                row[f"{r['measure']} (95 % CI)"] = fmt_ratio_ci(r["estimate"], r["ci_lb"], r["ci_ub"])
                row["p"] = fmt_p(r["pval"])
        row["Derived counts"] = "yes" if part["derived"].any() else "no"
        out.append(row)
    return pd.DataFrame(out)
