"""What changed since the previous run: studies added or removed, estimates that moved.

A living meta-analysis is re-run whenever a study appears; the reader's first
question is what the new study did to each pooled estimate.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

KEY = ["population", "outcome", "regimen_class", "method"]
MOVED_TOLERANCE = 1e-9  # anything above floating-point noise is a change worth reporting


@dataclass(frozen=True)
class ChangeReport:
    first_run: bool
    studies_added: tuple[str, ...]
    studies_removed: tuple[str, ...]
    estimates: pd.DataFrame          # one row per pooled estimate that appeared, vanished or moved

    def is_empty(self) -> bool:
        return not (self.studies_added or self.studies_removed or len(self.estimates))

    def text(self) -> str:
        if self.first_run:
            return "First run: no previous results to compare with."
        if self.is_empty():
            return "No change against the previous results."
        lines = []
        if self.studies_added:
            lines.append("Studies added: " + ", ".join(self.studies_added))
        if self.studies_removed:
            lines.append("Studies removed: " + ", ".join(self.studies_removed))
        for _, r in self.estimates.iterrows():
            where = f"{r.population} / {r.outcome} / {r.regimen_class} / {r.method}"
            if r.change == "new":
                lines.append(f"  new      {where}: {_pct(r.estimate_new)} (k = {_k(r.k_new)})")
            elif r.change == "removed":
                lines.append(f"  removed  {where}: was {_pct(r.estimate_old)} (k = {_k(r.k_old)})")
            else:
                lines.append(f"  moved    {where}: {_pct(r.estimate_old)} -> {_pct(r.estimate_new)} "
                             f"({(r.estimate_new - r.estimate_old) * 100:+.2f} points; k {_k(r.k_old)} -> {_k(r.k_new)})")
        return "\n".join(lines)


def _k(x) -> str:
    # k is an integer, but an outer merge leaves it float where one side is missing
    return "NA" if pd.isna(x) else str(int(x))


def _pct(x: float) -> str:
    return "NA" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x * 100:.1f}%"


def compare(old_pooled: pd.DataFrame | None, new_pooled: pd.DataFrame,
            old_studies: set[str] | None, new_studies: set[str]) -> ChangeReport:
    if old_pooled is None or old_studies is None:
        return ChangeReport(True, (), (), pd.DataFrame())
    old = old_pooled[KEY + ["estimate", "k", "studies"]]
    new = new_pooled[KEY + ["estimate", "k", "studies"]]
    merged = old.merge(new, on=KEY, how="outer", suffixes=("_old", "_new"), indicator=True)
    merged["change"] = merged["_merge"].map({"left_only": "removed", "right_only": "new", "both": "moved"})
    moved = (merged["change"] != "moved") | ~np.isclose(
        merged["estimate_old"].astype(float), merged["estimate_new"].astype(float),
        rtol=0, atol=MOVED_TOLERANCE, equal_nan=True) | (merged["k_old"] != merged["k_new"])
    changes = merged[moved].drop(columns="_merge").sort_values(KEY).reset_index(drop=True)
    return ChangeReport(False, tuple(sorted(new_studies - old_studies)),
                        tuple(sorted(old_studies - new_studies)), changes)


def read_previous(out_dir: Path) -> tuple[pd.DataFrame | None, set[str] | None]:
    pooled, studies = out_dir / "pooled.csv", out_dir / "studies.csv"
    if not pooled.exists() or not studies.exists():
        return None, None
    return pd.read_csv(pooled), set(pd.read_csv(studies)["study"])
