"""What Prefect itself costs per task run, apart from bua's work: a flow of N task runs that do
nothing, shaped like bua's phase tasks (an explicit cache key, a persisted result in a local
result-storage block, retries, a templated run name, a small dict result), on the shipped
ThreadPoolTaskRunner (2 workers), against a ``prefect server`` started here as its own process —
the set-up of ``bench/scale.py``'s flow part.

    .venv/bin/python bench/prefect_overhead.py                 # 110 task runs (bua's 100k graph before read_pairs ran once)
    .venv/bin/python bench/prefect_overhead.py --tasks 95 --repeat 3

Each repetition runs in its own child process (a warm-up flow first, then the measured one): wall,
CPU of the flow process, CPU of the server's process tree over the measured flow. Prints a table
and adds the result to bench/results/prefect_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import start_server, tree_cpu  # noqa: E402

CHILD = """
import json, resource, sys, tempfile, time, uuid
from prefect import flow, task
from prefect.filesystems import LocalFileSystem
from prefect.task_runners import ThreadPoolTaskRunner

n = int(sys.argv[1])
store = LocalFileSystem(basepath=tempfile.mkdtemp(prefix="bua-overhead-"))
store.save("bua-overhead-" + uuid.uuid4().hex[:8])


def body(run: dict, phase: str, shard: int, key: str) -> dict:
    return {"phase": phase, "shard": shard, "fingerprint": "0" * 64, "written": {"x": ["/tmp/x"] * 3},
            "stats": {}, "seconds": 0.0, "cpu_seconds": 0.0}


t = task(body, name="phase", task_run_name="phase[{shard}]", cache_key_fn=lambda c, p: p["key"],
         persist_result=True, result_storage=store, retries=2, log_prints=False)


@flow(name="overhead")
def many() -> None:
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        futures = [runner.submit(t, parameters={"run": {"run_date": "2026-11-01"}, "phase": "p", "shard": i,
                                                "key": uuid.uuid4().hex}) for i in range(n)]
        for f in futures:
            f.wait()


many()  # warm-up: imports, the first flow run's one-off costs
print("measure", flush=True)
sys.stdin.readline()
ru0, w = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
many()
wall, ru1 = time.perf_counter() - w, resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s": wall, "cpu_s": ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime}))
"""


def one(api: str, home: Path, server_pid: int, n: int) -> dict:
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(home), "PREFECT_LOGGING_LEVEL": "WARNING",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(n)], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    while proc.stdout.readline().strip() != "measure":
        pass
    before = tree_cpu(server_pid)
    proc.stdin.write("\n")
    proc.stdin.flush()
    result = json.loads(proc.stdout.readline())
    proc.wait(60)
    time.sleep(2)  # the server records the last events after the flow returns
    result["server_cpu_s"] = tree_cpu(server_pid) - before
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=110)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bua-overhead-prefect-"))
    server, api = start_server(home)
    try:
        runs = [one(api, home, server.pid, args.tasks) for _ in range(args.repeat)]
    finally:
        server.terminate()
        server.wait(30)
    print(f"{'run':>4} {'wall s':>8} {'flow CPU s':>11} {'server CPU s':>13} {'ms CPU / task run':>18}")
    for i, r in enumerate(runs, 1):
        per = 1000 * (r["cpu_s"] + r["server_cpu_s"]) / args.tasks
        print(f"{i:>4} {r['wall_s']:>8.2f} {r['cpu_s']:>11.2f} {r['server_cpu_s']:>13.2f} {per:>18.1f}")
    result = {"accounts": 0, "task_runs": args.tasks, "runs": runs, "load_average": os.getloadavg()}
    if not args.no_write:
        from results_file import save_run  # bench/, the script's own folder

        print(f"wrote {save_run('prefect_overhead', result, keys=('task_runs',))}")


if __name__ == "__main__":
    main()
