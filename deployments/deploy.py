"""Deploy every deployment of prefect.yaml with the configured timezone on its schedules.

``python -m deployments.deploy [--pool bua] [--dry-run]``: reads ``prefect.yaml``, sets every
schedule's timezone to ``BUA_TIMEZONE`` (default Australia/Sydney, the value the file carries),
checks each deployment's parameters against its flow's signature, writes the rendered file to a
temporary folder and runs ``prefect deploy --all --prefect-file …`` (Prefect's own CLI does the rest).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def render(timezone: str, pool: str | None = None) -> dict[str, Any]:
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    for deployment in config["deployments"]:
        for schedule in deployment.get("schedules") or []:
            schedule["timezone"] = timezone
        if pool:
            deployment["work_pool"] = {**deployment.get("work_pool", {}), "name": pool}
    return config


def check_parameters(config: dict[str, Any]) -> None:
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.schema_tools import validate

    for deployment in config["deployments"]:
        flow = load_flow_from_entrypoint(str(REPO / deployment["entrypoint"]))
        schema = parameter_schema(flow).model_dump()
        validate(deployment.get("parameters") or {}, schema, raise_on_error=True, ignore_required=True)


def main(argv: list[str] | None = None) -> int:
    from tasks.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", help="work pool name (default: as in prefect.yaml, 'bua')")
    parser.add_argument("--dry-run", action="store_true", help="render and check, do not deploy")
    args = parser.parse_args(argv)
    config = render(Settings().timezone, args.pool)
    check_parameters(config)
    out = Path(tempfile.mkdtemp(prefix="bua-deploy-")) / "prefect.yaml"  # never inside the checkout
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"rendered {out} (timezone {Settings().timezone})")
    if args.dry_run:
        return 0
    # the prefect of this interpreter (the venv bua is installed in), not whichever is first on PATH
    cmd = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all", "--prefect-file", str(out)]
    return subprocess.call(cmd, cwd=REPO)


if __name__ == "__main__":
    sys.exit(main())
