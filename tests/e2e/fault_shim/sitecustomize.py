"""Bridge of tests/e2e/faults.py's contract to today's hook (BUA_FAIL_PHASE): imported by Python
at the start of every process whose PYTHONPATH holds this folder (the e2e tests' worker and the
flow runs it starts). Test-only; remove once the flow reads BUA_TEST_FAULT itself."""

import os

_target = os.environ.get("BUA_TEST_FAULT")
_sentinel = os.environ.get("BUA_TEST_FAULT_SENTINEL")
if _target and _sentinel:
    if os.path.exists(_sentinel):
        os.environ["BUA_FAIL_PHASE"] = _target
    else:
        os.environ.pop("BUA_FAIL_PHASE", None)
