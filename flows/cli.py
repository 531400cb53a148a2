"""Entry point of the `bua` console script: imports every command module, exposes ``app``."""

from __future__ import annotations

import importlib

from flows.cli_app import app

# Each module registers its commands on the shared app; a module that is not there yet is skipped
# so that a partial checkout still runs the commands it has.
for _name in ("cli_db", "cli_generate", "cli_meter", "cli_run", "cli_demo", "cli_companion", "cli_legacy"):
    try:
        importlib.import_module(f"flows.{_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"flows.{_name}":
            raise

__all__ = ["app"]

if __name__ == "__main__":
    app()
