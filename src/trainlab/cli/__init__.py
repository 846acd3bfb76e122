"""The ``trainlab`` command line.

Each command is one module of this package with ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``; adding a command means adding its module and its name to
:data:`COMMANDS`. Options are checked as they are parsed (``cli.common`` types) and again, for
combinations, at the top of ``run`` before anything is written, so every mistake a user can make
is one line ``trainlab: error: ...`` and exit code 2. Ctrl-C is one line and exit code 130.

Only ``signal`` and ``sys`` are imported at module level: ``python -m trainlab.cli`` imports
this package before ``main`` can catch a Ctrl-C, so that window is kept short.
"""

from __future__ import annotations

import signal
import sys

#: command modules, in the order of ``trainlab --help``
COMMANDS = ("list", "run", "show", "bench", "worker", "score", "compare", "report", "export",
            "targets", "migrate", "predict-schedule", "extrapolate", "sensitivity", "demo")

INTERRUPTED = 130
_interrupt_requested = False


def build_parser():
    """The parser with every command of :data:`COMMANDS`."""
    import importlib
    from importlib.metadata import PackageNotFoundError, version

    from trainlab.cli.common import Parser

    try:
        release = version("trainlab")
    except PackageNotFoundError:  # running from a source tree
        from trainlab import __version__ as release
    parser = Parser(prog="trainlab", description="Train neural networks faster, and prove it.")
    parser.add_argument("--version", action="version", version=f"trainlab {release}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"trainlab.cli.{name.replace('-', '_')}")
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


_exiting = False


def _interrupted(as_program: bool) -> int:
    """One line, exit code 130. A program leaves at once: a process pool's threads would
    otherwise wait at exit for the trials in flight."""
    global _exiting
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C changes nothing now
    except ValueError:  # called from the timer's thread
        pass
    if _exiting:
        return INTERRUPTED
    _exiting = True
    sys.__stderr__.write("trainlab: interrupted\n")  # not sys.stderr: a live display may own it
    sys.__stderr__.flush()
    if not as_program:
        return INTERRUPTED
    import os

    try:
        # the line is out: what a dying pool's threads might still say goes nowhere
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        sys.__stdout__.flush()
        import multiprocessing
        from multiprocessing import util

        for child in multiprocessing.active_children():
            child.terminate()  # SIGTERM: a worker dies without a word
        util._run_finalizers(0)  # unlink the pool's semaphores (or the resource tracker warns)
    finally:
        os._exit(INTERRUPTED)


def _describe(exc: BaseException) -> str:
    """``[Errno 28] No space left on device: 'x'`` -> ``x: No space left on device``."""
    strerror, filename = getattr(exc, "strerror", None), getattr(exc, "filename", None)
    if strerror and filename:
        return f"{filename}: {strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__


def _on_sigint(signum, frame) -> None:
    """Raise KeyboardInterrupt (so a running trial is recorded as interrupted) and, in case
    some library's bare ``except:`` swallows it, exit from a timer a moment later anyway."""
    import threading

    global _interrupt_requested
    _interrupt_requested = True
    timer = threading.Timer(3.0, _interrupted, (True,))
    timer.daemon = True
    timer.start()
    raise KeyboardInterrupt


def main(argv=None) -> int:
    """Run one command; returns its exit code (0 ok, 1 a failed trial or the machine failing
    (disk, permissions), 2 bad input, 130 interrupted). With ``argv=None`` it is the program
    (arguments from ``sys.argv``)."""
    as_program = argv is None
    try:
        if as_program:
            signal.signal(signal.SIGINT, _on_sigint)
        import argparse
        import sqlite3

        from trainlab.errors import TrainlabError

        try:
            parser = build_parser()
            try:
                args = parser.parse_args(argv)
            except SystemExit as exc:  # --help and --version
                return int(exc.code or 0)
            # not list(...): importing the submodule trainlab.cli.list rebinds that name here
            args.argv = [*(sys.argv[1:] if argv is None else argv)]
            return args.func(args)
        except (TrainlabError, argparse.ArgumentTypeError) as exc:
            print(f"trainlab: error: {exc}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # `trainlab show | head`: the reader left, nothing to say
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        except (OSError, sqlite3.Error) as exc:  # the machine, not the input: disk, permissions
            print(f"trainlab: error: {_describe(exc)}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        return _interrupted(as_program)
    except BaseException:
        # a KeyboardInterrupt raised inside a library's import can surface as another error
        # (a half-imported numpy recursing, say): after a Ctrl-C it is still the Ctrl-C
        if _interrupt_requested:
            return _interrupted(as_program)
        raise


def __getattr__(name: str):
    """``trainlab.cli.DEMO_WORKLOADS`` and friends, still importable from here (lazily)."""
    if name.startswith("DEMO_"):
        from trainlab.cli import demo

        return getattr(demo, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
