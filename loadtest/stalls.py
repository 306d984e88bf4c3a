"""Find the tracker's stalls: latency per window beside what each worker did in it.

Starts ``tracker serve`` (two meinheld workers, the shipped config) on a broker
and Redis you give it, drives ``/imp`` (or ``--scenario``) with vegeta at a constant rate, and
prints one line per window: p99 and max, the cyclic GC's pauses in each worker
(count, total and longest, by generation; timed by a ``gc.callbacks`` hook put
in with ``sitecustomize`` for this run only), the CPU of every thread of every
worker, the CPU of vegeta, the broker and Redis, each worker's minor page
faults, resident memory and sockets, and the p99 of each second. Then the
slowest 100 ms slots, each with the share of the two cores every process used
in it (sampled every 100 ms): who ran while a request waited. PSS and private
memory are read only before and after the load (reading them pauses the
worker). ``--tree`` runs another checkout's tracker (``/work/main`` for the
figures before a change).

Usage::

    python -m loadtest.stalls --bootstrap 127.0.0.1:9092 --redis redis://127.0.0.1:6379/0 \\
        --rate 2000 --windows 6 --seconds 10 [--tree DIR] [--idle 0] [--vegeta-gc]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from loadtest import load
from loadtest.scenarios import SCENARIOS
from loadtest.servers import ROOT, TrackerServer, free_port

SCENARIOS_BY_NAME = {s.name: s.build for s in SCENARIOS}

#: Installed for the measured tracker only: times every collection of every process.
HOOK = """
import gc, os, time
_dir = os.environ.get("STALLS_GC_DIR")
if _dir:
    _state = {"pid": None, "out": None, "t": 0.0, "flushed": 0.0}
    def _gc(phase, info, _s=_state, _now=time.perf_counter, _wall=time.time):
        if phase == "start":
            _s["t"] = _now()
            return
        ms = (_now() - _s["t"]) * 1000
        if _s["pid"] != os.getpid():
            _s["pid"] = os.getpid()
            _s["out"] = open(os.path.join(_dir, "gc-%d.txt" % _s["pid"]), "a", buffering=1 << 16)
        wall = _wall()
        _s["out"].write("%.4f %d %.3f %d\\n" % (wall, info["generation"], ms, info["collected"]))
        if wall - _s["flushed"] > 1.0:  # read while the worker runs
            _s["flushed"] = wall
            _s["out"].flush()
    gc.callbacks.append(_gc)
"""


def threads(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of ``pid``, by ``name#tid``."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[f"{name}#{task.name}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


def process_stat(pid: int) -> tuple[float, int]:
    """CPU seconds (every thread, user and system) and minor page faults of ``pid``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), int(fields[7])


def neighbours() -> dict[str, int]:
    """The other processes on the cores: the broker and Redis, by their command lines."""
    found = {}
    for name, pattern in (("kafka", "kafka.Kafka"), ("redis", "redis-server")):
        pids = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
        for n, pid in enumerate(pids.split()):
            found[f"{name}{n or ''}"] = int(pid)
    return found


class Timeline(threading.Thread):
    """Every 100 ms, the CPU seconds of each watched process: who ran when a request waited."""

    def __init__(self, pids: dict[str, int]):
        super().__init__(daemon=True)
        self.pids, self.samples, self.done = pids, [], threading.Event()
        #: Each worker's main thread: its scheduler state and the system call it is in.
        self.workers = {n: p for n, p in pids.items() if n.startswith("worker")}
        self.states: list[tuple[float, dict[str, str]]] = []

    def run(self) -> None:
        while not self.done.wait(0.1):
            self.samples.append(
                (time.time(), {n: process_stat(p)[0] for n, p in self.pids.items()})
            )
            self.states.append((time.time(), {n: main_state(p) for n, p in self.workers.items()}))

    def worst(self, rows: list[list[str]], count: int = 8) -> list[dict]:
        """The ``count`` 100 ms slots whose requests waited longest, with who used the CPU."""
        slowest: dict[int, float] = defaultdict(float)
        for row in rows:
            slot = int(int(row[0]) / 1e8)
            slowest[slot] = max(slowest[slot], int(row[2]) / 1e6)
        out = []
        for slot, ms in sorted(slowest.items(), key=lambda kv: -kv[1])[:count]:
            start = slot / 10
            before = [s for s in self.samples if s[0] <= start]
            after = [s for s in self.samples if s[0] >= start + ms / 1000 + 0.1]
            if not before or not after:
                continue
            (t0, a), (t1, b) = before[-1], after[0]
            seen = [st for t, st in self.states if start <= t <= start + ms / 1000 + 0.1]
            out.append(
                {
                    "at": round(start, 1),
                    "worker_main_threads": {
                        n: dict(Counter(st[n] for st in seen).most_common(3)) for n in self.workers
                    },
                    "max_ms": round(ms, 1),
                    "cpu_share_of_2_cores": {n: round((b[n] - a[n]) / (t1 - t0) / 2, 2) for n in a},
                    "over_s": round(t1 - t0, 2),
                }
            )
        return out


def main_state(pid: int) -> str:
    """The main thread's state (R running, S sleeping, D in I/O) and its system call number."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        call = Path(f"/proc/{pid}/syscall").read_text().split()[0]
    except OSError:
        return "?"
    return f"{state}:{call}"


def rss(pid: int) -> float:
    """Resident memory of ``pid`` in MiB, from ``statm``: no walk of its page tables."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except OSError:
        return 0.0
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def memory(pid: int) -> dict[str, float]:
    """RSS, PSS and private (USS) memory of ``pid`` in MiB.

    ``smaps_rollup`` walks the process's page tables under its mmap lock, and
    the process waits for it whenever it maps memory: read it only before and
    after the load. Read once per window, it made stalls of its own, 10 s apart.
    """
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    private = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return {
        "rss": round(fields["Rss"], 1),
        "pss": round(fields["Pss"], 1),
        "uss": round(private, 1),
    }


def sockets(pid: int) -> int:
    """Open sockets of ``pid``: its client connections, give or take its listeners."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:
            continue
    return count


def gc_records(directory: Path) -> dict[int, list[tuple[float, int, float]]]:
    """Every collection the hook recorded: pid -> [(wall time, generation, ms)]."""
    found = defaultdict(list)
    for path in directory.glob("gc-*.txt"):
        pid = int(path.stem.split("-")[1])
        for line in path.read_text().splitlines():
            wall, gen, ms, _ = line.split()
            found[pid].append((float(wall), int(gen), float(ms)))
    return found


def main(argv: list[str] | None = None) -> int:
    """Run the measurement and print one JSON line per window, then a summary."""
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--bootstrap", required=True)
    args.add_argument("--redis", required=True)
    args.add_argument("--rate", type=int, default=2000)
    args.add_argument("--windows", type=int, default=6)
    args.add_argument("--seconds", type=float, default=10.0)
    args.add_argument("--idle", type=float, default=0.0, help="seconds idle after /readyz")
    args.add_argument("--tree", default=str(ROOT), help="checkout whose tracker runs")
    args.add_argument("--first", default="", help="a directory put first on the tracker's path")
    args.add_argument("--work", default=str(ROOT / "var" / "stalls"))
    args.add_argument("--port", type=int, default=0)
    args.add_argument("--scenario", default="imp", help="a row of loadtest/scenarios.py")
    args.add_argument(
        "--vegeta-gc", action="store_true", help="leave vegeta's GC at its default (GOGC=100)"
    )
    opts = args.parse_args(argv)
    work = Path(opts.work)
    hook, gc_dir = work / "hook", work / f"gc-{int(time.time())}"
    hook.mkdir(parents=True, exist_ok=True)
    gc_dir.mkdir(parents=True)
    (hook / "sitecustomize.py").write_text(HOOK)
    os.environ["PYTHONPATH"] = ":".join(p for p in (str(hook), opts.first, opts.tree) if p)
    os.environ["STALLS_GC_DIR"] = str(gc_dir)
    os.environ["TRACKER_GUNICORN_CONF"] = str(Path(opts.tree) / "config" / "gunicorn.conf.py")
    port = opts.port or free_port()
    targets = load.write_vegeta_targets(
        [SCENARIOS_BY_NAME[opts.scenario](i) for i in range(4000)],
        f"http://127.0.0.1:{port}",
        work / f"{opts.scenario}.json",
    )
    config = Path(opts.tree) / "config" / "tracker.yaml"
    server = TrackerServer(config, port, 2, opts.bootstrap, opts.redis, work / "server")
    try:
        return _measure(server, opts, targets, gc_dir)
    finally:
        server.stop()


def _measure(server: TrackerServer, opts, targets: Path, gc_dir: Path) -> int:
    deadline = time.monotonic() + 20  # /readyz answers from the first worker up
    while len(server_children(server.popen.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = [int(p) for p in server_children(server.popen.pid)]
    print(json.dumps({"workers": workers, "memory_ready": {w: memory(w) for w in workers}}))
    time.sleep(opts.idle)
    vegeta = str(ROOT / "var" / "bin" / "vegeta")
    command = load.attack_command(vegeta, targets, opts.rate, opts.seconds * opts.windows)
    if opts.vegeta_gc:
        command = command[command.index(vegeta) :]
    started = time.time()
    attack = load.Attack(command)
    others = {"vegeta": attack.pid, **neighbours()}
    cpu = [{w: threads(w) for w in workers}]
    stat = [{p: process_stat(p) for p in [*workers, *others.values()]}]
    timeline = Timeline({**{f"worker{n}": w for n, w in enumerate(workers)}, **others})
    timeline.start()
    mem = []
    for n in range(1, opts.windows + 1):
        time.sleep(max(0.0, started + n * opts.seconds - time.time()))
        cpu.append({w: threads(w) for w in workers})
        stat.append({p: process_stat(p) for p in [*workers, *others.values()]})
        mem.append({w: {"rss": rss(w), "sockets": sockets(w)} for w in workers})
        mem[-1]["vegeta"] = {"rss": rss(attack.pid)}
    out = attack.results()
    timeline.done.set()
    print(json.dumps({"memory_after": {w: memory(w) for w in workers}}))
    rows = load.encode_csv(vegeta, out)
    pauses = gc_records(gc_dir)
    first = min(int(r[0]) for r in rows) / 1e9
    for n in range(opts.windows):
        lo, hi = first + n * opts.seconds, first + (n + 1) * opts.seconds
        window = [r for r in rows if lo <= int(r[0]) / 1e9 < hi]
        if not window:
            continue
        figures = load.summarise(window, opts.rate)
        busy = {
            pid: {
                t: round(s - cpu[n][pid].get(t, 0.0), 2)
                for t, s in cpu[n + 1][pid].items()
                if s - cpu[n][pid].get(t, 0.0) > 0
            }
            for pid in workers
        }
        line = {
            "window": n + 1,
            "p50_ms": round(figures.p50_ms, 2),
            "p99_ms": round(figures.p99_ms, 2),
            "max_ms": round(figures.max_ms, 1),
            "errors": figures.errors,
            "gc_count_total_max_ms_by_gen": _collections(pauses, workers, lo, hi),
            "thread_cpu_s": busy,
            "p99_ms_by_second": _by_second(window, lo, int(opts.seconds), opts.rate),
            "minor_faults": {p: stat[n + 1][p][1] - stat[n][p][1] for p in workers},
            "other_cpu_s": {
                name: round(stat[n + 1][p][0] - stat[n][p][0], 2) for name, p in others.items()
            },
            "memory_mib": mem[n],
            "load": os.getloadavg()[0],
        }
        print(json.dumps(line), flush=True)
    for slot in timeline.worst(rows):
        print(json.dumps({"slow_slot": slot}))
    return 0


def _collections(pauses: dict, workers: list[int], lo: float, hi: float) -> dict:
    """Each worker's collections between ``lo`` and ``hi``: [count, total ms, max ms] by gen."""
    out = {}
    for pid in workers:
        by_gen = defaultdict(list)
        for wall, gen, ms in pauses.get(pid, []):
            if lo <= wall < hi:
                by_gen[gen].append(ms)
        out[pid] = {g: [len(v), round(sum(v), 1), round(max(v), 2)] for g, v in by_gen.items()}
    return out


def _by_second(window: list[list[str]], lo: float, seconds: int, rate: int) -> list[float]:
    """The p99 of each second of a window: where in it the slow requests were sent."""
    out = []
    for k in range(seconds):
        second = [r for r in window if lo + k <= int(r[0]) / 1e9 < lo + k + 1]
        if second:
            out.append(round(load.summarise(second, rate).p99_ms, 1))
    return out


def server_children(pid: int) -> list[str]:
    """The gunicorn workers: the master's children."""
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


if __name__ == "__main__":
    sys.exit(main())
