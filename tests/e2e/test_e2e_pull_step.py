"""prefect.yaml's pull step (deployments/steps.py) through Prefect's own step runner: BUA_CODE_DIR
when set (the image's /opt/bua), else the checkout bua is installed from; a clear error otherwise.
And why not Prefect's ``{{ $BUA_CODE_DIR }}``: `prefect deploy` already fills it from the deploying
shell (the function its deploy command applies to pull steps)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
import yaml

from tests.e2e.procs import REPO

STEP = {"deployments.steps.enter_code_dir": {}}

# Prefect's step runner resolves block and variable references through the API: the session's harness
pytestmark = pytest.mark.usefixtures("prefect_api_url")


@pytest.fixture
def restore_cwd():
    cwd = os.getcwd()
    yield
    os.chdir(cwd)


def run_pull_step() -> dict[str, str]:
    from prefect.deployments.steps.core import run_step

    return asyncio.run(run_step(STEP))


def test_prefect_yaml_pulls_with_the_step():
    assert yaml.safe_load((REPO / "prefect.yaml").read_text())["pull"] == [STEP]


def test_without_bua_code_dir_the_step_enters_the_installed_checkout(monkeypatch, tmp_path, restore_cwd):
    monkeypatch.delenv("BUA_CODE_DIR", raising=False)
    os.chdir(tmp_path)  # a process worker starts flow runs in a temporary directory
    out = run_pull_step()
    assert Path(out["directory"]) == REPO and Path.cwd() == REPO
    assert (Path.cwd() / "flows" / "monthly.py").is_file()  # the entrypoint resolves from here


def test_bua_code_dir_wins_as_in_the_image(monkeypatch, tmp_path, restore_cwd):
    code = tmp_path / "opt-bua"
    shutil.copytree(REPO / "flows", code / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("BUA_CODE_DIR", str(code))
    assert Path(run_pull_step()["directory"]) == code and Path.cwd() == code


def test_a_bua_code_dir_without_the_code_is_a_clear_error(monkeypatch, tmp_path, restore_cwd):
    monkeypatch.setenv("BUA_CODE_DIR", str(tmp_path / "nothing-here"))
    with pytest.raises(FileNotFoundError, match=r"BUA_CODE_DIR=.*nothing-here does not hold bua's code"):
        run_pull_step()


def test_prefect_deploy_would_fix_an_env_placeholder_at_deploy_time(monkeypatch):
    """`prefect deploy` (prefect/cli/deploy/_core.py) passes the pull steps through
    ``apply_values(pull_steps, step_outputs, remove_notset=False)``, which fills ``{{ $VAR }}`` from
    the deploying process's environment: the deployment would store the deployer's path."""
    from prefect.utilities.templating import apply_values

    templated = [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $BUA_CODE_DIR }}"}}]
    monkeypatch.setenv("BUA_CODE_DIR", "/home/someone/bua")
    stored = apply_values(templated, {}, remove_notset=False)
    assert stored[0]["prefect.deployments.steps.set_working_directory"]["directory"] == "/home/someone/bua"
