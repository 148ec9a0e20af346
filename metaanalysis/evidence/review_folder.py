"""Everything `metaanalysis validate` and `run` check in review/ beside the studies folder: the
search log, the quotes of records read at a URL, what every reviewed record holds, and the
published syntheses (each check lives in its own module; this one puts them together)."""

from __future__ import annotations

from pathlib import Path

from metaanalysis.evidence.excerpts import quote_problems
from metaanalysis.evidence.search_log import (
    SearchLog,
    check_search_log,
    load_search_log,
    review_beside,
    reviewed_record_problems,
)
from metaanalysis.evidence.syntheses import check_syntheses, load_syntheses
from metaanalysis.evidence.validation import ParsedFile, Problem, study_files


def check_review(
    review_dir: str | Path, studies_dir: str | Path, parsed: list[ParsedFile]
) -> tuple[SearchLog, list[Problem]]:
    """Everything `metaanalysis validate` checks in review/: the log, the log against the study
    files (`parsed`: the records as `check_directory` read them), the quotes of records read at
    a URL against review/excerpts/, what every reviewed record must hold (risk_of_bias,
    citation.metadata_source) and the published syntheses of review/syntheses/."""
    log, problems = load_search_log(Path(review_dir) / "search_log")
    files, _ = study_files(studies_dir)
    problems += check_search_log(log, [f.stem for f in files], studies_dir)
    problems += quote_problems(parsed, Path(review_dir) / "excerpts")
    problems += reviewed_record_problems(parsed)
    syntheses, synthesis_problems = load_syntheses(Path(review_dir) / "syntheses")
    problems += synthesis_problems + check_syntheses(syntheses, log)
    return log, problems


__all__ = ["check_review", "review_beside"]
