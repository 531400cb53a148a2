"""Test-only compatibility shim, loaded by Python at start-up from PYTHONPATH (also by the harness's server).

Prefect 3.8.8's server declares ``Body(..., min_items=1)``; FastAPI 0.143 and later no longer accept
unknown keyword arguments there, so the server cannot even be imported. Where the installed FastAPI
has that signature, translate ``min_items``/``max_items`` to ``min_length``/``max_length`` (their
Pydantic 2 names, same meaning). With FastAPI pinned below 0.143 this does nothing.
"""

from __future__ import annotations


def _install() -> None:
    import functools
    import inspect

    try:
        import fastapi
        import fastapi.param_functions as param_functions
    except ImportError:
        return
    params = inspect.signature(param_functions.Body).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    original = param_functions.Body

    @functools.wraps(original)
    def body(*args, min_items=None, max_items=None, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if min_items is not None:
            kwargs.setdefault("min_length", min_items)
        if max_items is not None:
            kwargs.setdefault("max_length", max_items)
        return original(*args, **kwargs)

    param_functions.Body = body
    fastapi.Body = body


_install()
