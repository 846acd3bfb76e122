"""Import a submission file and check that it has AlgoPerf's functions.

Every way a file can be unusable becomes one :class:`SubmissionError` line naming the file: not
found, a syntax error (with its line), an import of a module that is not installed (named), an
exception while importing, a required function missing or not callable.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

import torch

from trainlab.algoperf.compat import compat_modules
from trainlab.algoperf.pytorch_utils import active_device
from trainlab.errors import TrainlabError

#: the functions every submission defines (AlgoPerf's submission API)
REQUIRED = ("get_batch_size", "init_optimizer_state", "update_params", "data_selection")
#: optional (AlgoPerf v0.6 added ``prepare_for_eval``; v0.5 submissions lack it)
OPTIONAL = ("prepare_for_eval",)


class SubmissionError(TrainlabError):
    """A submission file that cannot be run (the command line exits with code 2)."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_module(path: Path, device: torch.device | str = "cpu") -> ModuleType:
    """Import the submission at ``path`` (absolute) as a fresh module; ``pytorch_setup()``
    reports ``device`` meanwhile. Raises :class:`SubmissionError` (see the module)."""
    if not path.is_file():
        raise SubmissionError(f"algoperf submission {path}: no such file")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    name = f"_trainlab_submission_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SubmissionError(f"algoperf submission {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # its own helper modules, as AlgoPerf's runner allows
    try:
        with compat_modules(), active_device(torch.device(device)):
            spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise SubmissionError(
            f"algoperf submission {path}: syntax error at line {exc.lineno}: {exc.msg}"
        ) from None
    except ModuleNotFoundError as exc:
        raise SubmissionError(
            f"algoperf submission {path}: imports {exc.name!r}, which is not installed"
            + (" (pip install 'trainlab[algoperf]')" if exc.name == "absl" else "")
        ) from None
    except Exception as exc:
        raise SubmissionError(
            f"algoperf submission {path}: importing it raised {_first_line(exc)}"
        ) from None
    finally:
        if sys.path and sys.path[0] == str(path.parent):
            del sys.path[0]
    check_functions(module, path)
    return module


def check_functions(module: ModuleType, path: Path) -> None:
    """Raise :class:`SubmissionError` unless every required function is defined and callable."""
    for fn in REQUIRED + OPTIONAL:
        value = getattr(module, fn, None)
        if value is None:
            if fn in REQUIRED:
                raise SubmissionError(f"algoperf submission {path}: no function {fn}() (a "
                                      f"submission defines {', '.join(REQUIRED)})")  # fmt: skip
        elif not callable(value):
            raise SubmissionError(f"algoperf submission {path}: {fn} is not a function")


def accepts(fn, name: str) -> bool:
    """Whether ``fn`` takes a keyword argument ``name`` (or ``**kwargs``): the v0.6 runner
    passes ``train_state`` to ``update_params`` only then."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
