"""bua's data work: pure functions over polars frames, one module per concept (docs/DESIGN.md).

Importing the package sets polars' allocator (jemalloc, read once when polars loads) to keep freed
pages for 10 s instead of returning them to the system at once: a month end decodes shard after
shard of the same size, and fresh pages cost a page fault each (at 100k accounts ~1.2M faults in
the rating phase alone, a quarter of its CPU). Measured at 100k (bench/scale.py, docs/DESIGN.md):
~8-10 CPU s less per month end. A value already in the environment wins.
"""

import os

os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:10000,muzzy_decay_ms:10000")
