"""Every check on study records; returns problems, never raises on bad input.

The checks live in `problems.py` (reading a file), `schema_walk.py` (keys and types),
`record_rules.py` (fields against each other) and `cross_file.py` (files against each other);
this module runs them.

`validate_directory("extracted_studies")` parses each `*.yaml` file with a
loader that keeps line numbers, walks the declared format in `schema.py`
(unknown, missing and wrongly typed keys), then runs the checks that relate
fields to each other (counts against percentages, CR <= ORR, CIs, dates) and
across files (duplicate ids, unknown relations, overlapping cohorts).
Each finding is a `Problem(file, path, line, severity, message)` with a
field path such as `arms[0].binary.CR.events`; all of them are returned at
once so that a reviewer fixes a file in one pass.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from metaanalysis.evidence import schema
from metaanalysis.evidence.cross_file import _cross_file

# The entry points live here; the names below are re-exported so that callers need one import.
from metaanalysis.evidence.problems import (
    ERROR,
    WARNING,
    ParsedFile,
    Problem,
    errors,  # noqa: F401
    format_path,
    parse_file,
    parse_text,
)
from metaanalysis.evidence.readers import percent_matches, printed_decimals  # noqa: F401
from metaanalysis.evidence.record_rules import RecordChecker
from metaanalysis.evidence.schema import ID_PATTERN
from metaanalysis.evidence.vocabulary import outcomes as load_outcomes
from metaanalysis.evidence.vocabulary import regimen_classes as load_regimen_classes

_Checker = RecordChecker  # the name search_log.py subclasses


def check_files(
    files: Iterable[str | Path], *, regimen_classes: dict | None = None, outcomes: dict | None = None
) -> tuple[list[ParsedFile], list[Problem]]:
    """Parse and check the given files; return the parsed records and every problem."""
    regimen_classes = load_regimen_classes() if regimen_classes is None else regimen_classes
    outcomes = load_outcomes() if outcomes is None else outcomes
    parsed_files: list[ParsedFile] = []
    problems: list[Problem] = []
    for f in files:
        parsed, parse_problems = parse_file(f)
        problems += parse_problems
        if parsed is None:
            continue
        checker = _Checker(parsed, regimen_classes, outcomes)
        checker.walk(parsed.data, schema.STUDY, ())
        checker.record_rules()
        problems += checker.problems
        parsed_files.append(parsed)
    problems += _cross_file(parsed_files)
    order = {str(f): i for i, f in enumerate(files)} if isinstance(files, list) else {}
    problems.sort(key=lambda p: (order.get(p.file, 0), p.file, p.line or 0))
    return parsed_files, problems


# What a folder of records may hold besides them, without a word: folder metadata that tools
# write by themselves and that holds no record (git's placeholders, macOS Finder, Windows Explorer).
QUIET_NAMES = frozenset({".gitkeep", ".gitignore", ".DS_Store", "Thumbs.db", "desktop.ini"})
# Endings that editors, merge tools and backups add after a file's name: copies, not records.
BACKUP_ENDINGS = (".bak", ".orig", ".old", ".swp", ".swo", ".tmp", ".rej", ".save", "~", "#")
_YAMLISH = re.compile(r"\.ya?ml", re.IGNORECASE)


def name_problem(name: str, noun: str = "study", stem_pattern: str | None = ID_PATTERN) -> tuple[str, str] | None:
    """(severity, message) for a file name in a folder of records that is not `<stem>.yaml`, or None.

    Errors for names that look meant as records but are not read as they stand (`x.yaml `,
    `x.YAML`, `x.yml`, `x.yaml.txt`) or whose stem breaks `stem_pattern` (read all the same, so that
    every other problem is listed too); warnings for hidden files, backup copies and other files,
    which are not read.
    """
    shown = repr(name)
    if name in QUIET_NAMES:
        return None
    if name.startswith("."):
        return WARNING, f"a hidden file ({shown}): not read as a {noun} record (a record is named <id>.yaml)"
    if name.endswith(BACKUP_ENDINGS) and _YAMLISH.search(name):
        return WARNING, f"a backup or editor copy ({shown}): not read as a {noun} record (delete it when done)"
    if name.endswith(".yaml"):
        stem = name[: -len(".yaml")]
        if stem_pattern is not None and not re.fullmatch(stem_pattern, stem):
            words = _PATTERN_WORDS.get(stem_pattern, stem_pattern)
            return ERROR, f"the file name {shown} is not <id>.yaml with an id of {words}: rename it (read all the same)"
        return None
    if not _YAMLISH.search(name):
        return WARNING, f"not a {noun} record ({shown}; records are named <id>.yaml): not read"
    stripped = name.strip()
    if stripped != name and stripped.endswith(".yaml"):
        why = "begins or ends with white space"
    elif re.search(r"\.ya?ml$", stripped, re.IGNORECASE):
        why = f"ends in {stripped[stripped.rindex('.') :]!r}"
    else:
        why = "has more after '.yaml'" if ".yaml" in name.lower() else "has more after '.yml'"
    return ERROR, f"{noun} files must end in exactly .yaml; the name {shown} {why}: not read (rename it)"


_PATTERN_WORDS = {ID_PATTERN: "lowercase letters, digits and _"}
_FOLDER_WORDS = {"study": "studies", "session": "search log", "synthesis": "syntheses"}


def record_files(
    directory: str | Path, noun: str = "study", stem_pattern: str | None = ID_PATTERN, *, required: bool = True
) -> tuple[list[Path], list[Problem]]:
    """The `<stem>.yaml` files of a folder of records (sorted) and a problem for everything else in it.

    Nothing is skipped without a word: every other entry gets an error or a warning (see
    `name_problem`), links are followed only to files inside the folder, and record files in a
    subfolder are named.
    """
    d = Path(directory)
    if not d.is_dir():
        return [], [Problem(str(d), "", None, ERROR, "no such directory")]
    files, problems = [], []
    inside = d.resolve()
    for p in sorted(d.iterdir()):
        if p.is_dir() and not p.is_symlink():
            continue  # searched below
        if p.is_dir():
            problems.append(Problem(str(p), "", None, WARNING, "a symbolic link to a folder: not searched"))
            continue
        found = name_problem(p.name, noun, stem_pattern)
        if found is not None:
            problems.append(Problem(str(p), "", None, *found))
            if found[0] == WARNING or not p.name.endswith(".yaml"):
                continue
        elif not p.name.endswith(".yaml"):
            continue  # folder metadata (QUIET_NAMES)
        # Never read outside the folder, never skip a file without saying so.
        if p.is_symlink() and not p.exists():
            problems.append(
                Problem(str(p), "", None, ERROR, "a symbolic link to nothing (its target is missing): not read")
            )
        elif p.is_symlink() and not p.resolve().is_relative_to(inside):
            problems.append(
                Problem(
                    str(p),
                    "",
                    None,
                    ERROR,
                    f"a symbolic link to a file outside the {_FOLDER_WORDS.get(noun, noun)} folder: not read "
                    "(copy the record into the folder)",
                )
            )
        elif not p.is_file():
            problems.append(Problem(str(p), "", None, ERROR, "not a regular file: not read"))
        else:
            files.append(p)
    # Record files parked in a subfolder are named (os.walk does not follow symbolic links: a link
    # to / is not searched).
    nested = sorted(
        Path(root) / f for root, _, names in os.walk(d) if Path(root) != d for f in names if _YAMLISH.search(f)
    )
    problems += [Problem(str(p), "", None, WARNING, f"in a subfolder: not read as a {noun} record") for p in nested]
    if required and not files:
        problems.append(Problem(str(d), "", None, ERROR, f"no {noun} files (*.yaml) in this directory"))
    return files, problems


def study_files(directory: str | Path) -> tuple[list[Path], list[Problem]]:
    """The `<id>.yaml` files of a studies folder (sorted), and a problem for everything else in it."""
    return record_files(directory, "study", ID_PATTERN)


def check_directory(
    directory: str | Path = "extracted_studies", *, regimen_classes: dict | None = None, outcomes: dict | None = None
) -> tuple[list[ParsedFile], list[Problem]]:
    """Parse and check every study file of `directory`: (parsed records, every problem)."""
    files, problems = study_files(directory)
    parsed, file_problems = check_files(files, regimen_classes=regimen_classes, outcomes=outcomes)
    return parsed, problems + file_problems


def validate_directory(
    directory: str | Path = "extracted_studies", *, regimen_classes: dict | None = None, outcomes: dict | None = None
) -> list[Problem]:
    """Every problem in every study file of `directory` (errors and warnings)."""
    return check_directory(directory, regimen_classes=regimen_classes, outcomes=outcomes)[1]


def validate_text(
    text: str, file: str = "<string>.yaml", *, regimen_classes: dict | None = None, outcomes: dict | None = None
) -> list[Problem]:
    """Problems of one record given as text (the id is checked against `file`'s name).

    Checks that need the other records (duplicate ids, relations, shared centres) are left to
    `validate_directory`.
    """
    parsed, problems = parse_text(text, file)
    if parsed is None:
        return problems
    checker = _Checker(
        parsed,
        load_regimen_classes() if regimen_classes is None else regimen_classes,
        load_outcomes() if outcomes is None else outcomes,
    )
    checker.walk(parsed.data, schema.STUDY, ())
    checker.record_rules()
    return sorted(checker.problems, key=lambda p: p.line or 0)


__all__ = [
    "Problem",
    "ParsedFile",
    "ERROR",
    "WARNING",
    "parse_text",
    "parse_file",
    "check_files",
    "check_directory",
    "validate_directory",
    "validate_text",
    "study_files",
    "record_files",
    "name_problem",
    "errors",
    "percent_matches",
    "printed_decimals",
    "format_path",
]
