"""``-a algoperf:PATH`` and the search-space options refused at the door: every bad input is
one ``trainlab: error:`` line, exit code 2, and no store written."""

import re
from pathlib import Path

import pytest

from trainlab.cli import main

HERE = Path(__file__).parent / "submissions"
NADAMW = f"algoperf:{HERE / 'nadamw_cosine.py'}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-a", f"algoperf:{HERE / 'bad_missing.py'}"], r"no function update_params\(\)"),
        (["-a", f"algoperf:{HERE / 'bad_syntax.py'}"], "syntax error at line 3"),
        (["-a", f"algoperf:{HERE / 'bad_import.py'}"], "imports 'trainlab_no_such_module'"),
        (["-a", f"algoperf:{HERE / 'nope.py'}"], "nope.py: no such file"),
        (["-a", f"algoperf:{HERE / 'bad_return.py'}"], "update_params returned a tuple of length"),
        (["-a", "adamw", "--hparams", "{hp}"], "--hparams applies to AlgoPerf submissions"),
        (["-a", NADAMW, "--hparams", "{hp}", "--tuning-search-space", "{space}"], "one of them"),
        (["-a", NADAMW, "--tuning-search-space", "{bad}"], "--tuning-search-space: "),
        (["-a", NADAMW, "--hparams", "{space}"], "not a finite number"),
    ],
)
def test_run_refuses_bad_input(args, message, tmp_path, capsys):
    files = {"hp": tmp_path / "hp.json", "space": tmp_path / "space.json",
             "bad": tmp_path / "bad.json"}  # fmt: skip
    files["hp"].write_text('{"learning_rate": 0.01}')
    files["space"].write_text('{"learning_rate": {"min": 0.001, "max": 0.1, "scaling": "log"}}')
    files["bad"].write_text('{"learning_rate": {"min": 1, "max": 0}}')
    argv = ["run", "-w", "digits_cnn", *[a.format(**files) for a in args],
            "--eval-every-steps", "5", "--max-steps", "10", "--store", str(tmp_path / "s.db")]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("trainlab: error: ") and len(err.splitlines()) == 1, err
    assert message.replace("\\", "") in err or re.search(message, err)
    assert not (tmp_path / "s.db").exists()


def test_bench_refuses_a_space_without_a_submission_and_on_resume(tmp_path, capsys):
    space = tmp_path / "space.json"
    space.write_text('[{"learning_rate": 0.01}]')
    common = ["--store", str(tmp_path / "s.db")]
    assert main(["bench", "-w", "digits_cnn", "-a", "adamw", "--tuning-search-space", str(space),
                 *common]) == 2  # fmt: skip
    assert "applies to AlgoPerf submissions" in capsys.readouterr().err
    assert main(["bench", "--resume", "--tuning-search-space", str(space), *common]) == 2
    assert "--tuning-search-space: --resume takes the stored plan" in capsys.readouterr().err
