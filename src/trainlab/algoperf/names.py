"""Registry names of submissions: ``algoperf:PATH``, optionally ``?space=FILE`` (an AlgoPerf
search space) or ``?hparams=FILE`` (one point). Paths are made absolute, so a worker process
that resolves the stored name loads the same files. Torch-free (the command line uses it)."""

from __future__ import annotations

from pathlib import Path

from trainlab.errors import TrainlabError

PREFIX = "algoperf:"
#: the query keys a name may carry
KEYS = ("space", "hparams")


def is_submission(name: str) -> bool:
    return name.strip().startswith(PREFIX)


def parse(name: str) -> tuple[Path, str | None, Path | None]:
    """``(submission path, "space" | "hparams" | None, file)`` of a submission name, the paths
    absolute. Raises :class:`TrainlabError` for an empty path or an unknown key."""
    rest = name.strip()[len(PREFIX):]
    path, _, query = rest.partition("?")
    if not path.strip():
        raise TrainlabError(f"{name!r}: give a file, algoperf:PATH/submission.py")
    key = file = None
    if query:
        key, sep, value = query.partition("=")
        if key not in KEYS or not sep or not value:
            raise TrainlabError(f"{name!r}: expected algoperf:PATH?space=FILE or "
                                "algoperf:PATH?hparams=FILE")  # fmt: skip
        file = Path(value).expanduser().resolve()
    return Path(path).expanduser().resolve(), key, file


def make(path: Path, key: str | None = None, file: Path | None = None) -> str:
    """The canonical name of a submission (with its search space or point)."""
    name = f"{PREFIX}{Path(path).expanduser().resolve()}"
    if key is not None and file is not None:
        name += f"?{key}={Path(file).expanduser().resolve()}"
    return name


def with_file(name: str, key: str, file: Path) -> str:
    """``name`` carrying ``--tuning-search-space`` (key ``space``) or ``--hparams``; a name
    that already carries one is an error (one space per submission)."""
    path, old, _ = parse(name)
    if old is not None:
        raise TrainlabError(f"{name!r} already names a {old} file; drop --tuning-search-space/"
                            "--hparams or the ?...= part")  # fmt: skip
    return make(path, key, file)
