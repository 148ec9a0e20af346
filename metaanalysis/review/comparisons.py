"""Two-arm comparisons within one study (e.g. Tongji: second CAR-T vs other salvage).

Each outcome is one 2x2 table; its odds ratio and risk difference come from
`escalc` and a k = 1 common-effect fit, which returns the study itself with a
Wald interval (metafor's `rma(..., method = "FE")` on one study does the same).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from metaanalysis.engine.effects import escalc
from metaanalysis.engine.results import SubgroupResult
from metaanalysis.engine.rma import rma_effects
from metaanalysis.review.analyses import Comparison


class ComparisonError(ValueError):
    """A declared comparison names a study, arm or outcome that is not in the records."""


@dataclass(frozen=True)
class ArmComparison:
    id: str
    title: str
    table: pd.DataFrame  # one row per outcome and measure
    by_measure: dict[str, SubgroupResult]  # outcome -> single-study fit, per measure (for plots)


def compare_arms(frame: pd.DataFrame, comparison: Comparison) -> ArmComparison:
    rows = frame[(frame["study"] == comparison.study) & frame["subgroup"].isna()]
    if rows.empty:
        raise ComparisonError(f"comparison {comparison.id!r}: no study {comparison.study!r} in the records")
    table, fits = [], {m: {} for m in comparison.measures}
    for outcome in comparison.outcomes:
        cells = {}
        for role, arm in (("exp", comparison.experimental), ("ctrl", comparison.control)):
            hit = rows[(rows["arm"] == arm) & (rows["outcome"] == outcome)]
            if len(hit) != 1 or hit["events"].isna().any() or hit["n"].isna().any():
                raise ComparisonError(
                    f"comparison {comparison.id!r}: study {comparison.study!r} arm {arm!r} "
                    f"has no count with a denominator for outcome {outcome!r}"
                )
            cells[role] = (int(hit["events"].iloc[0]), int(hit["n"].iloc[0]), bool(hit["derived"].iloc[0]))
        (a, n1, d1), (c, n2, d2) = cells["exp"], cells["ctrl"]
        for measure in comparison.measures:
            es = escalc(measure, ai=[a], n1i=[n1], ci=[c], n2i=[n2], add=0.5, to="only0", studies=(comparison.study,))
            res = rma_effects(es, method="FE", test="z", level=comparison.level, pi_method="metafor")
            fits[measure][outcome] = res
            ci_lb, ci_ub, _, _ = res.reporting_interval()
            table.append(
                dict(
                    comparison=comparison.id,
                    study=comparison.study,
                    outcome=outcome,
                    measure=measure,
                    experimental=comparison.experimental,
                    events_exp=a,
                    n_exp=n1,
                    control=comparison.control,
                    events_ctrl=c,
                    n_ctrl=n2,
                    derived=d1 or d2,
                    estimate=res.estimate,
                    ci_lb=ci_lb,
                    ci_ub=ci_ub,
                    pval=res.pval,
                )
            )
    title = comparison.label
    subs = {
        m: SubgroupResult(
            groups=g,
            Qbetween=None,
            Qbetween_df=None,
            Qbetween_p=None,
            notes=("one study per outcome: estimates shown, nothing pooled",),
        )
        for m, g in fits.items()
    }
    return ArmComparison(comparison.id, title, pd.DataFrame(table), subs)
