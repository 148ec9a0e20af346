"""`metaanalysis run`: the command around `pipeline.run.run()`: matplotlib's file backend, signals,
exit codes and one-line messages.

Exit codes: 0 complete run; 1 the evidence does not validate, a notebook failed, the results
cannot be written, or any other failure (one line; METAANALYSIS_TRACEBACK=1 shows the traceback);
130 Ctrl-C (SIGINT); 143 SIGTERM. In every failure the previous results stay as they were, and the
message says so.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import threading
import traceback
from pathlib import Path


class RunInterrupted(BaseException):
    """SIGTERM (or SIGINT) arrived: like KeyboardInterrupt, not an error of the run itself."""


_received: list[str] = []  # signals that arrived during this run
_before: list[str | None] = []  # the digest of the output folder's manifest when the run started


def _on_signal(signum, frame):
    name = signal.Signals(signum).name
    _received.append(name)
    if len(_received) > 1:
        return  # a second Ctrl-C while the staging folder is being removed: let that finish
    raise KeyboardInterrupt(name) if signum == signal.SIGINT else RunInterrupted(name)


def main(args) -> int:
    if "MPLBACKEND" not in os.environ:  # files only: the command draws for results/, never a window
        import matplotlib

        matplotlib.use("Agg")
    target = Path(args.out)
    _received.clear()
    _before[:] = [_manifest_digest(target)]
    handled = (signal.SIGINT, signal.SIGTERM)
    main_thread = threading.current_thread() is threading.main_thread()
    old = {s: signal.signal(s, _on_signal) for s in handled} if main_thread else {}
    try:
        return _main(args, target)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _main(args, target: Path) -> int:
    from metaanalysis.evidence.studies import StudyValidationError
    from metaanalysis.pipeline.run import describe_previous, find_notebooks, run
    from metaanalysis.pipeline.staging import OutputError, SwapUnavailable
    from metaanalysis.presentation.notebooks import NotebookError
    from metaanalysis.review.analyses import AnalysisDeclarationError

    try:
        if args.analyses and not Path(args.analyses).is_file():
            return _fail(f"--analyses {args.analyses}: no such file; nothing was pooled")
        notebooks = None if args.skip_notebooks else find_notebooks(args.notebooks, Path(args.studies))
        run(
            Path(args.studies),
            target,
            Path(args.analyses) if args.analyses else None,
            notebooks_dir=notebooks,
            history_dir=Path(args.history) if getattr(args, "history", None) else None,
        )
    except (KeyboardInterrupt, RunInterrupted):
        return _interrupted(target)
    except StudyValidationError as exc:
        return _fail(
            f"The evidence base does not validate; nothing was pooled and {describe_previous(target)}.", str(exc)
        )
    except NotebookError as exc:
        if _received or "KeyboardInterrupt" in str(exc) or _kernel_stopped_by_signal(exc):
            _received.append("SIGINT")
            return _interrupted(target)
        return _fail(f"A notebook failed: {_one_line(exc)}; {describe_previous(target)}.")
    except AnalysisDeclarationError as exc:
        return _fail(
            f"The analyses declaration is invalid; nothing was pooled and {describe_previous(target)}.", str(exc)
        )
    except SwapUnavailable as exc:
        return _fail(f"Results not replaced: {exc}")
    except OutputError as exc:
        return _fail(f"Cannot write the results: {exc}")
    except OSError as exc:
        return _fail(f"Run failed: {exc.strerror or exc} ({exc.filename}); {describe_previous(target)}.")
    except Exception as exc:  # a bug: one line here, the traceback on request
        if _received:
            return _interrupted(target)
        if os.environ.get("METAANALYSIS_TRACEBACK"):
            raise
        return _fail(
            f"Run failed: {type(exc).__name__}: {_one_line(exc)}; {describe_previous(target)}. "
            "(METAANALYSIS_TRACEBACK=1 shows the traceback)"
        )
    return 0


def _manifest_digest(target: Path) -> str | None:
    try:
        return hashlib.sha256((target / "manifest.json").read_bytes()).hexdigest()
    except OSError:
        return None


def _interrupted(target: Path) -> int:
    from metaanalysis.pipeline.run import describe_previous
    from metaanalysis.pipeline.staging import read_manifest

    name = _received[0] if _received else "SIGINT"
    now = _manifest_digest(target)
    manifest = read_manifest(target) if now is not None and now != (_before[0] if _before else None) else None
    if manifest is not None:  # the signal came after the swap: this run's results are in place
        _fail(
            f"Interrupted ({name}) after the new results were committed: {target}/ holds the complete run "
            f"finished {manifest.get('finished', '?')}; its history entry, if it needs one, is added by the next run."
        )
    else:
        _fail(f"Interrupted ({name}); {describe_previous(target)}.")
    return 143 if name == "SIGTERM" else 130


def _kernel_stopped_by_signal(exc: BaseException) -> bool:
    """nbclient answers SIGINT/SIGTERM with its own handler (ours is set aside while a kernel runs): it
    shuts the kernel down and the notebook fails with an unrelated error. Its client then holds
    `_async_cleanup_kernel_future` (nbclient 0.10-0.11); without it we say "a notebook failed"."""
    for error in (exc, exc.__cause__, exc.__context__):
        for frame, _ in traceback.walk_tb(getattr(error, "__traceback__", None)):
            if getattr(frame.f_locals.get("self"), "_async_cleanup_kernel_future", None) is not None:
                return True
    return False


def _one_line(exc: BaseException) -> str:
    from metaanalysis.presentation.safe_text import printable

    return printable(" ".join(str(exc).split()))


def _fail(line: str, details: str = "") -> int:
    from metaanalysis.presentation.safe_text import printable

    print(printable(line) + (f"\n{printable(details)}" if details else ""), file=sys.stderr)
    return 1
