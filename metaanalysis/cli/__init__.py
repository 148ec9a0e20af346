"""The `metaanalysis` console command.

Each subcommand lives in its own module and exposes `main(args) -> int`;
this file only declares the arguments, so `metaanalysis --help` is the one
place a user reads what the tool can do. Modules are imported lazily so that
`metaanalysis validate` does not pay for matplotlib.
"""

from __future__ import annotations

import argparse
import importlib
import sys

MEASURES = ["PR", "PLO", "PAS", "PFT", "OR", "RR", "RD", "GEN"]


class PoolMethods:
    """The names `pool-csv --method` accepts, read from the engine's registries when first needed
    (`pool_csv.method_names()`): importing the engine costs seconds that `validate` need not pay.
    argparse iterates it only to print --help."""

    def __iter__(self):
        from metaanalysis.cli.pool_csv import method_names

        return iter(method_names())

    def __contains__(self, name: object) -> bool:
        return name in list(self)


def _pool_method(name: str) -> str:
    """--method's type: a registry name, or a one-line error naming the names (BAYES: both models)."""
    from metaanalysis.cli.pool_csv import method_error

    if (problem := method_error(name)) is not None:
        raise argparse.ArgumentTypeError(problem.removeprefix("--method ").strip())
    return name


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (the command, what is wrong, where to read more), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="metaanalysis",
        description="Living meta-analysis toolkit: study records, random-effects pooling, forest plots.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)

    p = sub.add_parser("validate", help="check every study record and list every problem at once")
    p.add_argument("directory", nargs="?", default="extracted_studies", help="folder of study YAML files")
    p.set_defaults(module="metaanalysis.cli.validate")

    p = sub.add_parser("summary", help="validate, then print the evidence base as a table")
    p.add_argument("directory", nargs="?", default="extracted_studies")
    p.set_defaults(module="metaanalysis.cli.summary")

    p = sub.add_parser("pool-csv", help="pool any CSV table and print the result as JSON")
    p.add_argument("file", help="CSV with study,events,n | study,ai,n1i,ci,n2i | study,yi,vi")
    p.add_argument("--measure", required=True, choices=MEASURES)
    p.add_argument(
        "--method",
        default="REML",
        type=_pool_method,
        choices=PoolMethods(),
        metavar="METHOD",
        help="a tau^2 estimator (inverse-variance pooling of the yi, vi of --measure) or a model of the "
        "engine's method registry (engine/methods.py); one of: %(choices)s (default %(default)s)",
    )
    p.add_argument(
        "--ci",
        default="knha",
        choices=["z", "knha", "knha_adhoc"],
        help="Wald z, Hartung-Knapp-Sidik-Jonkman, or HKSJ never narrower than Wald (ad hoc)",
    )
    p.add_argument("--group", default=None, help="column holding subgroup labels")
    p.add_argument("--level", type=float, default=0.95)
    p.add_argument(
        "--transform",
        default=None,
        choices=["exp", "ilogit"],
        help="back-transform for GEN (e.g. exp for log hazard ratios); other measures use their own",
    )
    p.add_argument(
        "--tau-prior",
        default=None,
        metavar="halfnormal:SCALE",
        help="--method BAYES-NN or BAYES-BN: half-normal prior on tau (default per measure: 1.0 for PLO, "
        "0.5 for OR/RR, 0.25 for PR/PAS/PFT/RD; GEN needs one; SCALE between 1e-10 and 1e10)",
    )
    p.add_argument("--json", action="store_true", help="print JSON (the only output format for now)")
    p.set_defaults(module="metaanalysis.cli.pool_csv")

    p = sub.add_parser("run", help="validate, pool every declared analysis, draw figures, execute notebooks")
    p.add_argument("--studies", default="extracted_studies")
    p.add_argument("--analyses", default=None, help="analyses YAML (default: the packaged analyses.yaml)")
    p.add_argument("--out", default="results")
    p.add_argument(
        "--notebooks",
        default=None,
        help="folder of notebooks (default: notebooks/ here, beside --studies, or in the project)",
    )
    p.add_argument("--skip-notebooks", action="store_true", help="pool and plot only")
    p.add_argument(
        "--history",
        default=None,
        metavar="DIR",
        help="the tracked history folder (default: history/ beside the studies folder); "
        "an entry is added when the evidence or the analyses file changed",
    )
    p.set_defaults(module="metaanalysis.cli.run")

    p = sub.add_parser("new-study", help="write a commented template for a new study record")
    p.add_argument("id", help="study id, e.g. smith2026")
    p.add_argument("--directory", default="extracted_studies")
    p.set_defaults(module="metaanalysis.cli.new_study")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = importlib.import_module(args.module)
    return int(module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
