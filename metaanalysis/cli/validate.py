"""`metaanalysis validate [DIR]`: list every problem in every study record.

One line per problem, `file:line: severity: field.path: message`, then a
count. When a `review/` folder sits beside DIR (the systematic search), its
search log and excerpts are checked too (see `evidence/search_log.py`).
Exit code 1 if any error, 0 when only warnings (or nothing) remain.
"""

from __future__ import annotations

from metaanalysis.evidence.review_folder import check_review, review_beside
from metaanalysis.evidence.validation import ERROR, check_directory
from metaanalysis.presentation.safe_text import printable


def report(problems) -> str:
    n_errors = sum(p.severity == ERROR for p in problems)
    n_warnings = len(problems) - n_errors
    return f"{n_errors} error(s), {n_warnings} warning(s)"


def main(args) -> int:
    parsed, problems = check_directory(args.directory)
    review = review_beside(args.directory)
    sessions = ""
    if review.is_dir():
        log, review_problems = check_review(review, args.directory, parsed)
        problems = problems + review_problems
        sessions = f", {len(log.sessions)} search session(s) in {review}"
    for problem in problems:
        _print(problem)
    _print(f"{args.directory}: {len(parsed)} study file(s) read{sessions}; {report(problems)}")
    return 1 if any(p.severity == ERROR for p in problems) else 0


def _print(text: object = "") -> None:
    """print() for text that comes from study records or file names: control characters escaped."""
    print(printable(text))
