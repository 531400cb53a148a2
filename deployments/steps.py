"""bua's pull step: enter the directory that holds bua's code, wherever the flow run executes.

prefect.yaml's ``pull:`` runs in the flow-run process before the flow is loaded from its
entrypoint (``flows/monthly.py:bua_monthly``, a path relative to the working directory), so the
working directory must be the code's. That is ``/opt/bua`` in the flow-run image (the Dockerfile
sets ``BUA_CODE_DIR=/opt/bua``) and the checkout on a machine whose process worker was started from
one. One step for both, resolved when the flow run starts (never at deploy time):

1. ``BUA_CODE_DIR`` from the flow run's environment (the worker's, plus the pool's ``env``), if set;
2. else the checkout this module was imported from (an editable install: ``./dev`` or
   ``pip install -e .``), recognised by its ``prefect.yaml``.

Why not ``directory: "{{ $BUA_CODE_DIR }}"`` with Prefect's own set_working_directory: Prefect 3.9's
``prefect deploy`` already applies ``{{ $VAR }}`` placeholders of pull steps from the *deploying*
shell's environment when the variable is set there (``prefect/cli/deploy/_core.py``: the pull steps
go through ``apply_values``, which reads ``os.environ`` for ``$`` placeholders), so a deploy from a
checkout with ``BUA_CODE_DIR`` set would store that path for every flow run, ECS included; and unset
at run time it becomes ``""`` (``FileNotFoundError: ''``).
"""

from __future__ import annotations

import os
from pathlib import Path

CODE_DIR_ENV = "BUA_CODE_DIR"
ENTRYPOINT = Path("flows") / "monthly.py"


def code_dir(environ: dict[str, str] | None = None) -> Path:
    """The directory holding bua's code for this flow run; raises naming what was looked at."""
    env = os.environ if environ is None else environ
    given = env.get(CODE_DIR_ENV)
    if given:
        path = Path(given)
        if not (path / ENTRYPOINT).is_file():
            raise FileNotFoundError(
                f"{CODE_DIR_ENV}={given} does not hold bua's code (no {ENTRYPOINT} there): "
                f"set {CODE_DIR_ENV} to the directory with flows/, tasks/ and sql/ "
                "(/opt/bua in the image, the checkout on a process worker)"
            )
        return path
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "prefect.yaml").is_file() and (checkout / ENTRYPOINT).is_file():
        return checkout
    raise FileNotFoundError(
        f"{CODE_DIR_ENV} is not set and bua is not installed from a checkout ({checkout} has no "
        f"prefect.yaml): set {CODE_DIR_ENV} in the worker's environment or the work pool's env "
        "(the flow-run image sets /opt/bua)"
    )


def enter_code_dir() -> dict[str, str]:
    """The pull step: ``os.chdir`` into :func:`code_dir`; its output ``directory`` (for later steps)."""
    path = code_dir()
    os.chdir(path)
    return {"directory": str(path)}
