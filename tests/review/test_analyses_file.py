"""The analyses file is read and checked as strictly as the study records: every problem of a
hostile file is named by file, line and field, all at once, and nothing is written before."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from metaanalysis import cli
from metaanalysis.pipeline.run import run
from metaanalysis.review.analyses import AnalysisDeclarationError, default_path, load_plan

ROOT = Path(__file__).resolve().parents[2]
OK = "{id: a, population: after_car_t, outcome: ORR}"

# (name, file text, line, field ("" for the whole file), a phrase of the message)
HOSTILE = [
    ("duplicate key", f"analyses:\n  - {OK}\nanalyses: []\n", 3, "analyses", "appears twice"),
    (
        "duplicate key in an entry",
        "analyses:\n  - {id: a, population: after_car_t,\n     outcome: ORR, outcome: CR}\n",
        3,
        "analyses[0].outcome",
        "appears twice",
    ),
    (
        "unknown outcome",
        "analyses:\n  - {id: a, population: after_car_t, outcome: CRX}\n",
        2,
        "analyses[0].outcome",
        "unknown outcome 'CRX'",
    ),
    (
        "unknown comparison outcome",
        "comparisons:\n  - {id: c, study: s, experimental: x, control: y,\n     outcomes: [ORR, ORR_day31]}\n",
        3,
        "comparisons[0].outcomes[1]",
        "unknown outcome 'ORR_day31'",
    ),
    (
        "level above 1",
        f"defaults:\n  level: 1.5\nanalyses:\n  - {OK}\n",
        2,
        "defaults.level",
        "strictly between 0 and 1",
    ),
    ("level 1", "defaults:\n  level: 1\n", 2, "defaults.level", "strictly between 0 and 1"),
    ("level 0", "defaults:\n  level: 0.0\n", 2, "defaults.level", "strictly between 0 and 1"),
    ("level as text", "defaults:\n  level: '95 %'\n", 2, "defaults.level", "expected a number"),
    ("level YAML 1.1 float", "defaults:\n  level: .95\n", 2, "defaults.level", "write 0.95"),
    ("level with a tag", "defaults:\n  level: !!float 0.95\n", 2, "defaults.level", "tag !!float"),
    (
        "months octal",
        "landmarks:\n  - {id: l, population: after_car_t, endpoint: OS, months: 012}\n",
        2,
        "landmarks[0].months",
        "YAML 1.1 reads it as 10",
    ),
    (
        "months with an int tag",
        "landmarks:\n  - {id: l, population: after_car_t, endpoint: OS, months: !!int 12}\n",
        2,
        "landmarks[0].months",
        "tag !!int",
    ),
    (
        "months 1_2",
        "landmarks:\n  - {id: l, population: after_car_t, endpoint: OS, months: 1_2}\n",
        2,
        "landmarks[0].months",
        "not a plain decimal number",
    ),
    (
        "months zero",
        "landmarks:\n  - {id: l, population: after_car_t, endpoint: OS, months: 0}\n",
        2,
        "landmarks[0].months",
        "> 0",
    ),
    (
        "landmark without months",
        "landmarks:\n  - {id: l, population: after_car_t, endpoint: OS}\n",
        2,
        "landmarks[0].months",
        "required key 'months' is missing",
    ),
    ("max_k hexadecimal", "defaults:\n  bayes: {max_k: 0x4}\n", 2, "defaults.bayes.max_k", "not a plain decimal"),
    ("tag on a mapping", "defaults: !!map\n  level: 0.95\n", 1, "defaults", "tag !!map"),
    (
        "unknown method",
        "analyses:\n  - {id: a, population: after_car_t, outcome: ORR, methods: [GLMM, GLMMX]}\n",
        2,
        "analyses[0].methods",
        "unknown ['GLMMX']",
    ),
    (
        "method twice",
        "analyses:\n  - {id: a, population: after_car_t, outcome: ORR, methods: [PLO, PLO]}\n",
        2,
        "analyses[0].methods",
        "lists PLO more than once",
    ),
    ("unknown unit", "defaults:\n  units: [patients, courses]\n", 2, "defaults.units", "unknown ['courses']"),
    (
        "unknown disease",
        "sensitivity:\n  - {id: s, diseases: [LBCL, lymphoma]}\n",
        2,
        "sensitivity[0].diseases",
        "unknown ['lymphoma']",
    ),
    (
        "unknown selection written alone",
        "analyses:\n  - {id: a, population: after_car_t, outcome: ORR, selection: failed}\n",
        2,
        "analyses[0].selection",
        "unknown ['failed']",
    ),
    ("unknown grouping", "defaults:\n  group_by: regimen\n", 2, "defaults.group_by", "'regimen' is not one of"),
    (
        "unknown tau^2 estimator",
        "defaults:\n  inverse_variance: {method: REM}\n",
        2,
        "defaults.inverse_variance.method",
        "did you mean 'REML'",
    ),
    ("unknown CI test", "defaults:\n  inverse_variance: {test: hksj}\n", 2, "defaults.inverse_variance.test", "hksj"),
    ("bad tau prior", "defaults:\n  bayes: {tau_prior: 'cauchy:1'}\n", 2, "defaults.bayes.tau_prior", "FAMILY:SCALE"),
    (
        "primary method not fitted",
        "defaults:\n  methods: [PLO]\n  primary:\n    - {method: GLMM}\n",
        4,
        "defaults.primary[0].method",
        "not among defaults.methods",
    ),
    (
        "primary method not among the default methods",
        "defaults:\n  primary:\n    - {method: PAS}\n",
        3,
        "defaults.primary[0].method",
        "not among defaults.methods",
    ),
    (
        "an analysis without its primary method",
        "defaults:\n  methods: [GLMM, PLO]\n"
        "analyses:\n  - {id: a, population: after_car_t, outcome: ORR, methods: [PLO]}\n",
        4,
        "analyses[0].methods",
        "leaves out GLMM, which defaults.primary makes primary",
    ),
    (
        "unknown population",
        "hazard_ratios:\n  - {id: h, population: after_cart, comparisons: [x]}\n",
        2,
        "hazard_ratios[0].population",
        "did you mean 'after_car_t'",
    ),
    ("unknown top-level key", f"analysis:\n  - {OK}\n", 1, "analysis", "did you mean 'analyses'"),
    ("unknown key in defaults", "defaults:\n  levl: 0.9\n", 2, "defaults.levl", "unknown key 'levl'"),
    (
        "unknown key in a landmark",
        "landmarks:\n  - {id: l, population: after_car_t, endpoint: OS, months: 12, month: 6}\n",
        2,
        "landmarks[0].month",
        "unknown key 'month'",
    ),
    (
        "unknown key in a comparison",
        "comparisons:\n  - {id: c, study: s, experimental: x, control: y, measure: [OR]}\n",
        2,
        "comparisons[0].measure",
        "did you mean 'measures'",
    ),
    (
        "unknown key in a sensitivity",
        "sensitivity:\n  - {id: s, exclud: [x]}\n",
        2,
        "sensitivity[0].exclud",
        "unknown key",
    ),
    (
        "unknown key in a median",
        "medians:\n  - {id: m, population: after_car_t, endpoint: OS, cohorts: whole, cohort: x}\n",
        2,
        "medians[0].cohort",
        "unknown key 'cohort'",
    ),
    (
        "unknown key in a timing stratum",
        "medians:\n  - id: m\n    population: after_car_t\n    endpoint: OS\n    cohorts: by_timing\n"
        "    timing:\n      early:\n        subgroups: [s/a]\n        lable: x\n",
        9,
        "medians[0].timing.early.lable",
        "did you mean 'label'",
    ),
    (
        "timing subgroup without its study",
        "medians:\n  - id: m\n    population: after_car_t\n    endpoint: OS\n    cohorts: by_timing\n"
        "    timing:\n      early:\n        subgroups: [s/a, progression_lt_2mo]\n",
        8,
        "medians[0].timing.early.subgroups[1]",
        "not a 'study/subgroup' id",
    ),
    (
        "by_timing without timing",
        "medians:\n  - {id: m, population: after_car_t, endpoint: OS, cohorts: by_timing}\n",
        2,
        "medians[0].timing",
        "required with cohorts: by_timing",
    ),
    (
        "unknown key in a hazard ratio",
        "hazard_ratios:\n  - {id: h, population: after_car_t, comparisons: [x], comparison: y}\n",
        2,
        "hazard_ratios[0].comparison",
        "unknown key",
    ),
    (
        "text where a list is expected",
        "analyses:\n  - {id: a, population: after_car_t, outcome: ORR, methods: GLMM}\n",
        2,
        "analyses[0].methods",
        "expected a list, got text 'GLMM'",
    ),
    (
        "text where a list of comparisons is expected",
        "hazard_ratios:\n  - {id: h, population: after_car_t, comparisons: late vs early}\n",
        2,
        "hazard_ratios[0].comparisons",
        "expected a list",
    ),
    ("number where a mapping is expected", "defaults: 3\n", 1, "defaults", "expected a mapping of keys"),
    ("number where an entry is expected", "analyses:\n  - 3\n", 2, "analyses[0]", "expected a mapping of keys"),
    ("list at the top", f"- {OK}\n", 1, "", "expected a mapping of keys"),
    (
        "a boolean as text",
        "sensitivity:\n  - {id: s, exclude_derived: 'yes'}\n",
        2,
        "sensitivity[0].exclude_derived",
        "expected true or false",
    ),
    (
        "an id as a number",
        "analyses:\n  - {id: 12, population: after_car_t, outcome: ORR}\n",
        2,
        "analyses[0].id",
        "expected text",
    ),
    (
        "path-like id",
        "analyses:\n  - {id: '../../../elsewhere/evil', population: after_car_t, outcome: ORR}\n",
        2,
        "analyses[0].id",
        "not a safe id",
    ),
    (
        "absolute id",
        "landmarks:\n  - {id: /tmp/x, population: after_car_t, endpoint: OS, months: 6}\n",
        2,
        "landmarks[0].id",
        "not a safe id",
    ),
    ("hidden-file id", "sensitivity:\n  - {id: .hidden}\n", 2, "sensitivity[0].id", "not a safe id"),
    ("id with '..'", "sensitivity:\n  - {id: a..b}\n", 2, "sensitivity[0].id", "not a safe id"),
    ("id ending in '.'", "sensitivity:\n  - {id: a.}\n", 2, "sensitivity[0].id", "not a safe id"),
    ("option-like id", "sensitivity:\n  - {id: -rf}\n", 2, "sensitivity[0].id", "not a safe id"),
    ("id with a space", "sensitivity:\n  - {id: 'a b'}\n", 2, "sensitivity[0].id", "not a safe id"),
    ("id too long", f"sensitivity:\n  - {{id: {'a' * 101}}}\n", 2, "sensitivity[0].id", "at most 100"),
    (
        "ids equal but for case",
        f"analyses:\n  - {OK}\nsensitivity:\n  - {{id: A}}\n",
        4,
        "sensitivity[0].id",
        "duplicate id 'A' (first at line 2, analyses[0]",
    ),
    ("sensitivity named primary", "sensitivity:\n  - {id: primary}\n", 2, "sensitivity[0].id", "names the analyses"),
    (
        "arm id with a slash",
        "comparisons:\n  - {id: c, study: s, experimental: ../x, control: y}\n",
        2,
        "comparisons[0].experimental",
        "lowercase letters, digits and _",
    ),
    ("NUL character", f"analyses:\n  - {OK}\n# \x00\n", 3, "", "NUL"),
    ("ESC in a label", 'sensitivity:\n  - {id: s, label: "\\e[31mred"}\n', 2, "sensitivity[0].label", "U+001B"),
    ("alias", f"analyses:\n  - &a {OK}\n  - *a\n", 2, "analyses[1]", "anchors/aliases"),
    ("malformed", "analyses: [\n", 2, "", "not valid YAML"),
    ("empty file", "", None, "", "the file is empty"),
]


def expect(message: str, path: Path, line: int | None, field: str, phrase: str) -> None:
    where = f"{path}:{line}" if line is not None else str(path)
    head = f"{where}: {field}: " if field else f"{where}: "
    matching = [m for m in message.splitlines() if m.startswith(head) and phrase in m]
    assert matching, f"no line starting {head!r} with {phrase!r} in:\n{message}"


@pytest.mark.parametrize(("name", "text", "line", "field", "phrase"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_analyses_file_is_named_by_file_line_and_field(tmp_path, name, text, line, field, phrase):
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AnalysisDeclarationError) as err:
        load_plan(path)
    expect(str(err.value), path, line, field, phrase)


def test_a_file_that_is_not_utf8_is_named_by_line(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_bytes(f"analyses:\n  - {OK}\n# caf\xe9 (Latin-1)\n".encode("latin-1"))
    with pytest.raises(AnalysisDeclarationError) as err:
        load_plan(path)
    expect(str(err.value), path, 3, "", "not UTF-8 text (byte 0xE9 at column 6)")


FIVE_PROBLEMS = """\
defaults:
  level: 1.5
analyses:
  - {id: orr, population: after_car_t, outcome: CRX}
  - {id: orr, population: after_car_t, outcome: ORR}
  - {id: ../evil, population: after_car_t, outcome: CR}
landmarks:
  - {id: os12, population: after_car_t, endpoint: OS, months: 12, mnths: 6}
"""


def test_five_problems_are_listed_at_once(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(FIVE_PROBLEMS, encoding="utf-8")
    with pytest.raises(AnalysisDeclarationError) as err:
        load_plan(path)
    message = str(err.value)
    expect(message, path, 2, "defaults.level", "strictly between 0 and 1")
    expect(message, path, 4, "analyses[0].outcome", "unknown outcome 'CRX'")
    expect(message, path, 5, "analyses[1].id", "duplicate id 'orr'")
    expect(message, path, 6, "analyses[2].id", "not a safe id")
    expect(message, path, 8, "landmarks[0].mnths", "unknown key 'mnths'")
    assert len(message.splitlines()) == 5, message
    lines = [int(re.match(rf"{re.escape(str(path))}:(\d+): ", m).group(1)) for m in message.splitlines()]
    assert lines == sorted(lines)  # in the order of the file


def test_the_shipped_analyses_file_loads_to_the_same_plan():
    text = default_path().read_text(encoding="utf-8")
    declared = yaml.safe_load(text)  # PyYAML, not our reader
    plan = load_plan()
    assert [(a.id, a.population, a.outcome) for a in plan.analyses] == [
        (e["id"], e["population"], e["outcome"]) for e in declared["analyses"]
    ]
    assert [a.selections for a in plan.analyses] == [
        tuple(e["selection"]) if "selection" in e else None for e in declared["analyses"]
    ]
    assert {a.methods for a in plan.analyses} == {tuple(declared["defaults"]["methods"])}
    assert {a.level for a in plan.analyses} == {declared["defaults"]["level"]}
    assert [(lm.id, lm.endpoint, lm.months) for lm in plan.landmarks] == [
        (e["id"], e["endpoint"], e["months"]) for e in declared["landmarks"]
    ]
    assert [(s.id, s.label, s.units, s.diseases, s.exclude) for s in plan.sensitivity] == [
        (
            e["id"],
            e["label"],
            tuple(e["units"]) if "units" in e else None,
            tuple(e["diseases"]) if "diseases" in e else None,
            tuple(e.get("exclude", ())),
        )
        for e in declared["sensitivity"]
    ]
    [comparison] = plan.comparisons
    assert (comparison.study, comparison.measures) == (
        declared["comparisons"][0]["study"],
        tuple(declared["comparisons"][0]["measures"]),
    )
    by_timing = next(m for m in plan.medians if m.cohorts == "by_timing")
    assert [(t.id, t.members) for t in by_timing.timing] == [
        (sid, tuple(t["subgroups"]))
        for sid, t in next(e for e in declared["medians"] if "timing" in e)["timing"].items()
    ]
    assert [h.comparisons for h in plan.hazard_ratios] == [tuple(e["comparisons"]) for e in declared["hazard_ratios"]]
    # and a few read off the text itself
    assert re.search(r"^\s+- \{id: orr_after_cart, population: after_car_t, outcome: ORR\}$", text, re.M)
    assert plan.analyses[0].id == "orr_after_cart" and plan.analyses[0].inverse_variance.test == "knha"
    assert re.search(r"^  bayes: \{tau_prior: \"halfnormal:1.0\", max_k: 4\}$", text, re.M)
    assert (plan.analyses[0].bayes.tau_prior, plan.analyses[0].bayes.max_k) == ("halfnormal:1.0", 4)


EVIL = "analyses:\n  - {id: ../../elsewhere/evil, population: after_car_t, outcome: ORR}\n"


def test_a_path_like_id_is_refused_before_anything_is_written(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(EVIL, encoding="utf-8")
    with pytest.raises(AnalysisDeclarationError, match="not a safe id"):
        run(ROOT / "extracted_studies", tmp_path / "results", plan, log=lambda *a: None)
    # the figures folder would have been <staging>/figures, so ../../elsewhere is tmp_path/elsewhere
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.yaml"]


def test_the_command_prints_every_problem_without_a_traceback(tmp_path, capsys):
    plan = tmp_path / "plan.yaml"
    plan.write_text(FIVE_PROBLEMS, encoding="utf-8")
    args = ["run", "--studies", str(ROOT / "extracted_studies"), "--analyses", str(plan)]
    code = cli.main([*args, "--out", str(tmp_path / "results"), "--skip-notebooks"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    head, *problems = err.strip().splitlines()
    assert "analyses declaration is invalid; nothing was pooled" in head and "was not changed" in head
    assert len(problems) == 5 and all(p.startswith(f"{plan}:") for p in problems)
    expect(err, plan, 6, "analyses[2].id", "not a safe id")
    assert not (tmp_path / "results").exists()
