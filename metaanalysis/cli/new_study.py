"""`metaanalysis new-study ID`: write a commented template for a new study record.

The template (metaanalysis/templates/new_study.yaml) holds "<FILL:...>"
placeholders; `metaanalysis validate` reports any left unfilled.
"""

from __future__ import annotations

import re
import sys
from importlib import resources
from pathlib import Path

from metaanalysis.evidence.schema import ID_PATTERN
from metaanalysis.presentation.safe_text import printable

TEMPLATE = "new_study.yaml"
ID_TOKEN = "__STUDY_ID__"
MAX_ID_LENGTH = 80  # file systems allow 255 bytes per name; an id is read in tables and plots


def template_text(study_id: str) -> str:
    """The template with the id filled in."""
    text = resources.files("metaanalysis").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")
    return text.replace(ID_TOKEN, study_id)


def write_template(study_id: str, directory: str | Path = "extracted_studies") -> Path:
    """Write `directory/study_id.yaml`; ValueError for a bad id, FileExistsError/FileNotFoundError otherwise."""
    if not re.fullmatch(ID_PATTERN, study_id):
        raise ValueError(
            f"invalid study id '{study_id}': use lowercase letters, digits and _ only (e.g. smith_glofitamab_2026)"
        )
    if len(study_id) > MAX_ID_LENGTH:
        raise ValueError(
            f"study id is {len(study_id)} characters long; use at most {MAX_ID_LENGTH} (e.g. smith_glofitamab_2026)"
        )
    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(f"directory '{folder}' does not exist")
    target = folder / f"{study_id}.yaml"
    with open(target, "x", encoding="utf-8") as handle:  # "x": never overwrite an existing record
        handle.write(template_text(study_id))
    return target


def main(args) -> int:
    try:
        target = write_template(args.id, args.directory)
    except FileExistsError:
        print(
            f"error: {Path(args.directory) / (args.id + '.yaml')} already exists; refusing to overwrite it",
            file=sys.stderr,
        )
        return 1
    except (ValueError, FileNotFoundError) as exc:
        print(printable(f"error: {exc}"), file=sys.stderr)  # the id as typed may hold escapes
        return 1
    except OSError as exc:
        print(f"error: cannot write {Path(args.directory) / (args.id + '.yaml')}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f'wrote {target}: replace every "<FILL:...>" placeholder, then run `metaanalysis validate {args.directory}`')
    return 0
