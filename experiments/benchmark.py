"""Performance benchmarks: the engine against the Mesa-object reference, and at scale.

Each case is a configuration run ``repeats`` times, every run in a fresh
subprocess with every thread pool set to one thread (NUMBA_NUM_THREADS,
OMP_NUM_THREADS, ...), so the timings are single-core and the peak resident
memory (VmHWM of the child) belongs to that case alone. A case reports the
median over its runs. ``seconds`` is wall time (the figure of record);
``cpu_seconds`` is the child's CPU time, which other load on a shared machine
disturbs much less (``load_average`` at the start of each run says how busy
the machine was).

What is timed: building the model and ``run()`` (for the engine this includes
building the Result: the daily and agents tables and the summary with every
side's LTV forecast); ``simulation_seconds`` is the part before the Result
(building the model and simulating the days), the figure the Mesa pairs
compare, since the Mesa reference builds no agents table and forecasts no
LTV (its own includes its DataCollector's daily table). Not timed:
interpreter start-up, imports, composing the config, and a tiny warm-up run of
the same market and policies (loads numba's cached kernels), so the figures are
steady-state throughput.

Throughput is agent-days per second: the sum over days of the alive agents of
every side (daily ``<side>_active``), divided by the seconds.

Where the time goes: ``desk_share`` is the share of the timed wall time spent
in the SimPy CS desk (submitting and advancing), ``cs_share`` that of the whole
CS step (tickets, health, policies and desk), both from the model's own
perf_counter accounts (``model.cs.seconds``; never written to results).

Memory: ``peak_rss_bytes`` is the child's peak resident set (interpreter,
libraries and all); ``peak_rss_per_agent`` divides it by the initial agents of
all sides, ``peak_rss_per_agent_created`` by every agent the run ever created
(initial and acquired: the rows of the agents table); ``model_bytes_per_agent``
divides only the growth of the peak during the timed part (peak minus the peak
before the model is built) by the initial agents.

The whole-process case (engine ``process``) is different: it times a whole
``twosided run`` command from outside (start-up, config, population, run,
writing the run folder), in a fresh single-core process with the kernels in
numba's cache, and reads its peak RSS from the kernel's accounting of that
child (``os.wait4``). Its figure of merit is its wall time over the simulation
time the bench measures for the same configuration (``goods-1M``).

This module holds the cases and the measurement; experiments/bench.py is the
``twosided bench`` command (arguments, the table, bench.json).
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SINGLE_THREAD_ENV = {name: "1" for name in (
    "NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")}
_MARKER = "@@BENCH@@"

# Performance targets (measured here, never asserted in unit tests).
TARGET_GOODS_1M = 80e6          # agent-days/s, goods, 1M buyers, 365 days, no policy
TARGET_DELIVERY_1M = 30e6       # agent-days/s, delivery, 1M buyers, every policy
TARGET_RATIO_100K = 100.0       # engine / Mesa reference at 100k buyers
TARGET_RATIO_10K = 20.0         # engine / Mesa reference at 10k buyers
TARGET_GOODS_10M = 50e6         # agent-days/s, goods, 10M buyers and 1M sellers, 365 days, one process
TARGET_BYTES_PER_AGENT_10M = 300.0  # whole-process peak RSS per agent ever created, goods 10M
TARGET_WHOLE_PROCESS = 1.25     # `twosided run market=goods scale=large` wall time / the bench's goods-1M time
# Linear scaling: agent-days/s at 1M within 20% of 100k
TARGET_SCALING = 0.20
WHOLE_PROCESS_COMMAND = ["market=goods", "scale=large"]   # `twosided run` arguments; the config of goods-1M


@dataclass
class Case:
    """One benchmark configuration."""

    name: str
    engine: str                     # "twosided" (sim.Marketplace) or "mesa" (experiments.mesa_reference)
    market: str
    buyers: int
    days: int
    repeats: int
    overrides: list[str] = field(default_factory=list)   # extra Hydra overrides
    pair: str | None = None         # cases with the same pair key are compared engine vs Mesa
    policies: list[str] = field(default_factory=list)
    note: str = ""
    command: list[str] = field(default_factory=list)   # engine "process": the `twosided run` arguments

    @property
    def population(self) -> dict[str, int]:
        pop = {"buyers": self.buyers, "sellers": max(1, self.buyers // 10)}
        if self.market != "goods":
            pop["drivers"] = max(1, self.buyers // 25)
        if self.market == "rides":
            pop.pop("sellers")
        return pop

    @property
    def agents(self) -> int:
        return sum(self.population.values())

    def config_overrides(self, buyers: int | None = None, days: int | None = None) -> list[str]:
        """The full override list (no key twice: Hydra refuses duplicates)."""
        from experiments.mesa_reference import REFERENCE_OVERRIDES

        scale = buyers or self.buyers
        pop = dict(self.population) if buyers is None else {
            side: max(1, n * buyers // self.buyers) for side, n in self.population.items()}
        values: dict[str, str] = {"market": self.market, "policy": "none"}
        for item in REFERENCE_OVERRIDES if self.pair else []:
            key, _, value = item.partition("=")
            values[key] = value
        if self.policies:
            values["policy"] = "[" + ",".join(self.policies) + "]"
        values["days"] = str(days or self.days)
        for side, n in pop.items():
            values[f"population.{side}"] = str(n)
        values["cs.staff"] = str(max(1, round(scale / 20000)))   # conf/scale/large.yaml: 50 staff per 1M buyers
        for item in self.overrides:
            key, _, value = item.partition("=")
            values[key] = value
        return [f"{k}={v}" for k, v in values.items()]


def default_cases(quick: bool = False) -> list[Case]:
    """The benchmark cases; ``quick``: only the 10k ones, fewer repeats."""
    ref_note = "the Mesa reference's model: goods, no policy, experience effects off, no acquisition"
    cases = [
        Case("pair-10k-mesa", "mesa", "goods", 10_000, 365, 2 if quick else 3, pair="10k", note=ref_note),
        Case("pair-10k-engine", "twosided", "goods", 10_000, 365, 2 if quick else 5, pair="10k", note=ref_note),
        Case("goods-10k", "twosided", "goods", 10_000, 365, 2 if quick else 5),
    ]
    if quick:
        return cases
    short = 60
    cases[2:2] = [
        Case("pair-100k-mesa", "mesa", "goods", 100_000, short, 2, pair="100k",
             note=f"{ref_note}; {short} of 365 days (the Mesa reference is slow): compare per agent-day"),
        Case("pair-100k-engine", "twosided", "goods", 100_000, short, 3, pair="100k",
             note=f"{ref_note}; {short} days, as its Mesa pair"),
    ]
    goods_1m = Case("goods-1M", "twosided", "goods", 1_000_000, 365, 2)
    cases += [
        Case("goods-100k", "twosided", "goods", 100_000, 365, 3),
        goods_1m,
        whole_process_case(goods_1m),
        delivery_all_policies_case(1_000_000, 365, 1),
        Case("goods-10M", "twosided", "goods", 10_000_000, 365, 1,
             note="10M buyers and 1M sellers in one process (about 6 GB and several minutes)"),
    ]
    return cases


def whole_process_case(simulated: Case) -> Case:
    """`twosided run market=goods scale=large` timed from outside, to compare with ``simulated``.

    The two must be the same run; :func:`target_checks` checks that their agent-days agree.
    """
    return Case(f"{simulated.name}-whole-process", "process", simulated.market, simulated.buyers, simulated.days, 1,
                command=WHOLE_PROCESS_COMMAND,
                note="`twosided run " + " ".join(WHOLE_PROCESS_COMMAND) + "` timed from outside, kernels cached")


def delivery_all_policies_case(buyers: int, days: int, repeats: int) -> Case:
    """market=delivery with every policy of conf/policy/ but none, or policy=none if that does not compose."""
    from experiments.config import group_options, load_config

    label = f"{buyers // 1_000_000}M" if buyers >= 1_000_000 else f"{buyers // 1000}k"
    options = [o for o in group_options("policy") if o != "none"]
    case = Case(f"delivery-{label}-all-policies", "twosided", "delivery", buyers, days, repeats, policies=options)
    if not options:
        case.policies, case.name = [], f"delivery-{label}-no-policy"
        case.note = "FALLBACK to policy=none: conf/policy/ has no policy besides none yet"
        return case
    try:
        load_config(case.config_overrides(buyers=1000, days=2))
        case.note = "policy=[" + ",".join(options) + "]"
    except Exception as error:  # noqa: BLE001 - any failure to compose means: fall back, and say so
        case.policies, case.name = [], f"delivery-{label}-no-policy"
        case.note = f"FALLBACK to policy=none: policy=[{','.join(options)}] does not compose ({error})"
    return case


# -- the child: one timed run in a fresh process ---------------------------------
def status_kb(field_name: str) -> int:
    """A field of this process's /proc/self/status in kB (VmRSS: resident now, VmHWM: its peak); 0 if absent."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def _agent_days(daily) -> int:
    """Agent-days of a run: the sum over days of the alive agents of every side."""
    return int(sum(daily[f"{side}_active"].sum() for side in ("buyers", "sellers", "drivers")
                   if f"{side}_active" in daily))


def child_main(spec_json: str) -> None:
    """Run one case once (in this fresh process) and print its measurements as one JSON line."""
    spec = json.loads(spec_json)

    from experiments.config import load_config

    cfg = load_config(spec["overrides"])
    agents_created = spec["agents"]   # the Mesa reference has no acquisition
    if spec["engine"] == "mesa":
        from experiments.mesa_reference import MesaMarketplace as Model
    else:
        from sim import Marketplace as Model
    Model(load_config(spec["warmup_overrides"])).run()   # imports, numba caches: not timed
    baseline = status_kb("VmHWM") * 1024
    load = os.getloadavg()[0]
    start, cpu_start = time.perf_counter(), time.process_time()
    model = Model(cfg)
    if spec["engine"] == "mesa":
        result = daily = model.run()   # the daily table, as the DataCollector gives it
    else:
        model.run_until(cfg.days)
    simulated, cpu_simulated = time.perf_counter() - start, time.process_time() - cpu_start
    if spec["engine"] != "mesa":
        from sim.result import build_result

        result = build_result(model)   # what run() returns: daily and agents tables, summary with LTV forecasts
        daily, agents_created = result.daily, len(result.agents)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    cs_seconds = dict(getattr(getattr(model, "cs", None), "seconds", None) or {})
    agent_days = _agent_days(daily)
    out = {"seconds": seconds, "cpu_seconds": cpu_seconds, "load_average": load, "agent_days": agent_days,
           "simulation_seconds": simulated, "simulation_cpu_seconds": cpu_simulated,
           "days": int(len(daily)),
           "peak_rss_bytes": status_kb("VmHWM") * 1024, "baseline_rss_bytes": baseline,
           "agents_created": agents_created,
           "desk_seconds": cs_seconds.get("desk"), "cs_seconds": cs_seconds.get("cs_total")}
    print(_MARKER + json.dumps(out), flush=True)


def _child_command(spec: dict) -> list[str]:
    code = "import sys; from experiments.benchmark import child_main; child_main(sys.argv[1])"
    return [sys.executable, "-c", code, json.dumps(spec)]


def _child_env() -> dict[str, str]:
    return {**os.environ, **SINGLE_THREAD_ENV, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}


def run_process_once(case: Case, timeout: float = 7200.0) -> dict:
    """``twosided run CASE.COMMAND`` in a fresh single-core process, timed from outside.

    Wall seconds from start to exit; CPU seconds and peak RSS of that child
    from ``os.wait4``; agent-days and agents created from the run folder it wrote.
    """
    import tempfile

    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="bench-process-") as tmp:
        run_dir = Path(tmp) / "run"
        command = [sys.executable, "-m", "experiments.cli", "run", *case.command, f"hydra.run.dir={run_dir}"]
        stderr_path = Path(tmp) / "stderr.txt"
        load = os.getloadavg()[0]
        with open(stderr_path, "wb") as stderr:
            start = time.perf_counter()
            proc = subprocess.Popen(command, cwd=tmp, env=_child_env(), stdout=subprocess.DEVNULL, stderr=stderr)
            pid = 0
            while not pid:   # os.wait4 gives this child's own rusage (peak RSS, CPU); poll it for the timeout
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if not pid and time.perf_counter() - start > timeout:
                    proc.kill()
                    proc.wait()
                    raise RuntimeError(f"benchmark case {case.name} did not finish in {timeout:.0f} s")
                if not pid:
                    time.sleep(0.01)
            seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)   # reaped by wait4: tell Popen
        if proc.returncode != 0:
            tail = stderr_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"benchmark case {case.name} failed (exit {proc.returncode}): " + " | ".join(tail))
        daily = pq.read_table(run_dir / "daily.parquet").to_pandas()
        agents_created = pq.ParquetFile(run_dir / "agents.parquet").metadata.num_rows
    agent_days = _agent_days(daily)
    return {"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime, "load_average": load,
            "agent_days": agent_days, "days": int(len(daily)), "peak_rss_bytes": usage.ru_maxrss * 1024,
            "baseline_rss_bytes": 0, "agents_created": agents_created, "desk_seconds": None, "cs_seconds": None,
            "simulation_seconds": None, "simulation_cpu_seconds": None}


def run_once(case: Case, timeout: float = 7200.0) -> dict:
    """One run of ``case`` in a fresh single-core subprocess; its measurements."""
    if case.engine == "process":
        return run_process_once(case, timeout)
    spec = {"engine": case.engine, "overrides": case.config_overrides(), "agents": case.agents,
            "warmup_overrides": case.config_overrides(buyers=1000, days=3)}
    env = _child_env()
    command = _child_command(spec)
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith(_MARKER):
            return json.loads(line[len(_MARKER):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    raise RuntimeError(f"benchmark case {case.name} failed (exit {proc.returncode}): " + " | ".join(tail))


def measure(case: Case, progress=None) -> dict:
    """Run ``case`` ``repeats`` times; the median figures as one bench.json entry."""
    runs = []
    for i in range(case.repeats):
        try:
            runs.append(run_once(case))
        except RuntimeError as error:
            if case.policies and not runs:  # the policies fail at run time: fall back, and say so
                case.note = f"FALLBACK to policy=none: the run with policy=[{','.join(case.policies)}] failed ({error})"
                case.policies, case.name = [], case.name.replace("all-policies", "no-policy")
                return measure(case, progress)
            raise
        if progress:
            progress(case, i, runs[-1])
    seconds = statistics.median(r["seconds"] for r in runs)
    cpu_seconds = statistics.median(r["cpu_seconds"] for r in runs)
    simulated = [r["simulation_seconds"] for r in runs if r.get("simulation_seconds") is not None]
    simulated_cpu = [r["simulation_cpu_seconds"] for r in runs if r.get("simulation_cpu_seconds") is not None]
    agent_days = runs[0]["agent_days"]
    peak = int(max(r["peak_rss_bytes"] for r in runs))
    share = {}
    for part in ("desk", "cs"):   # the CS desk's and the whole CS step's share of the timed wall time
        values = [r[f"{part}_seconds"] / r["seconds"] for r in runs if r.get(f"{part}_seconds") is not None]
        share[f"{part}_share"] = statistics.median(values) if values else None
    baseline = int(statistics.median(r["baseline_rss_bytes"] for r in runs))
    return {
        "name": case.name, "engine": case.engine, "market": case.market, "agents": case.agents,
        "buyers": case.buyers, "days": runs[0]["days"], "repeats": case.repeats,
        "seconds": seconds, "seconds_runs": [r["seconds"] for r in runs],
        "agent_days": agent_days, "agent_days_per_s": agent_days / seconds,
        "seconds_per_million_agent_days": seconds / agent_days * 1e6,
        "cpu_seconds": cpu_seconds, "agent_days_per_cpu_s": agent_days / cpu_seconds,
        # the days alone (building the model and simulating, not the Result): what the Mesa pairs compare
        "simulation_seconds": statistics.median(simulated) if simulated else None,
        "simulation_cpu_seconds": statistics.median(simulated_cpu) if simulated_cpu else None,
        "load_average": [round(r["load_average"], 2) for r in runs],
        "peak_rss_bytes": peak, "peak_rss_per_agent": peak / case.agents,
        "agents_created": runs[0]["agents_created"], "peak_rss_per_agent_created": peak / runs[0]["agents_created"],
        "baseline_rss_bytes": baseline, "model_bytes_per_agent": (peak - baseline) / case.agents,
        "policies": list(case.policies), "pair": case.pair, "note": case.note, **share,
        "overrides": case.command or case.config_overrides(), "machine": machine(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }


def add_ratios(results: list[dict]) -> None:
    """``ratio_vs_mesa`` = engine agent-days/s over the Mesa reference's, pair by pair (Mesa's own: 1)."""
    for pair in {r["pair"] for r in results if r["pair"]}:
        members = [r for r in results if r["pair"] == pair]
        mesa = [r for r in members if r["engine"] == "mesa"]
        for r in members:
            if mesa:   # the same days simulated: the Mesa reference builds no agents table and forecasts no LTV
                r["ratio_vs_mesa"] = mesa[0]["simulation_seconds"] / r["simulation_seconds"]
                r["ratio_vs_mesa_cpu"] = mesa[0]["simulation_cpu_seconds"] / r["simulation_cpu_seconds"]


def run_cases(cases: list[Case], progress=None, on_case=None) -> list[dict]:
    """Measure every case in turn; ``on_case(results so far)`` after each (to save partial results)."""
    results = []
    for case in cases:
        results.append(measure(case, progress))
        add_ratios(results)
        if on_case:
            on_case(results)
    return results


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    import numpy

    return (f"{cpu}, {os.cpu_count()} cores (benchmarks use 1), Python {platform.python_version()}, "
            f"numpy {numpy.__version__}")


def target_checks(results: list[dict]) -> list[tuple[str, str, bool | None]]:
    """The performance targets (speed, memory, scaling) against the results: (target, measured, met?); None: not run."""
    by = {r["name"]: r for r in results}
    out = []

    def rate(name):
        return by[name]["agent_days_per_s"] if name in by else None

    def both(r):  # wall (the figure of record) and per CPU second
        return f"{r['agent_days_per_s'] / 1e6:.1f}M ({r['agent_days_per_cpu_s'] / 1e6:.1f}M per CPU s)"

    def speed(target, r, minimum):
        out.append((target, both(r) if r else "not run", r["agent_days_per_s"] >= minimum if r else None))

    speed(f"goods 1M, 365 days >= {TARGET_GOODS_1M / 1e6:.0f}M agent-days/s", by.get("goods-1M"), TARGET_GOODS_1M)
    delivery = next((r for r in results if r["name"].startswith("delivery-1M")), None)
    label = "all policies" if not delivery or delivery["policies"] else "policy=none (FALLBACK)"
    speed(f"delivery 1M, {label} >= {TARGET_DELIVERY_1M / 1e6:.0f}M agent-days/s", delivery, TARGET_DELIVERY_1M)
    for pair, minimum in (("100k", TARGET_RATIO_100K), ("10k", TARGET_RATIO_10K)):
        engine = by.get(f"pair-{pair}-engine", {})
        ratio, ratio_cpu = engine.get("ratio_vs_mesa"), engine.get("ratio_vs_mesa_cpu")
        out.append((f">= {minimum:.0f}x the Mesa reference at {pair}",
                    f"{ratio:.1f}x ({ratio_cpu:.1f}x in CPU time)" if ratio else "not run",
                    ratio >= minimum if ratio else None))
    big = by.get("goods-10M")
    speed(f"goods 10M buyers + 1M sellers, 365 days >= {TARGET_GOODS_10M / 1e6:.0f}M agent-days/s", big,
          TARGET_GOODS_10M)
    out.append((f"goods 10M: peak RSS <= {TARGET_BYTES_PER_AGENT_10M:.0f} B per agent ever created",
                f"{big['peak_rss_per_agent_created']:.0f} B/agent ({big['peak_rss_bytes'] / 2**30:.2f} GB, "
                f"{big['agents_created']:,} agents)" if big else "not run",
                big["peak_rss_per_agent_created"] <= TARGET_BYTES_PER_AGENT_10M if big else None))
    process, simulation = by.get("goods-1M-whole-process"), by.get("goods-1M")
    target = f"`twosided run {' '.join(WHOLE_PROCESS_COMMAND)}` <= {TARGET_WHOLE_PROCESS}x goods-1M's time"
    if not (process and simulation):
        out.append((target, "not run", None))
    elif process["agent_days"] != simulation["agent_days"]:
        out.append((target, f"not comparable: {process['agent_days']:,} agent-days against "
                            f"{simulation['agent_days']:,}",
                    None))
    else:
        ratio = process["seconds"] / simulation["seconds"]
        out.append((target, f"{ratio:.2f}x ({process['seconds']:.1f} s whole process, {simulation['seconds']:.1f} s "
                    "simulated)", ratio <= TARGET_WHOLE_PROCESS))
    g1m, g100k = rate("goods-1M"), rate("goods-100k")
    out.append(("linear scaling: goods 1M within 20% of 100k (agent-days/s)",
                f"{g1m / g100k:.2f} of 100k" if g1m and g100k else "not run",
                abs(g1m / g100k - 1) <= TARGET_SCALING if g1m and g100k else None))
    return out


def _percent(share: float | None) -> str:
    return "" if share is None else f"{100 * share:.0f}%"


def format_table(results: list[dict]) -> str:
    header = (f"{'case':<28} {'engine':<8} {'market':<8} {'agents':>9} {'days':>4} {'seconds':>8} "
              f"{'agent-days/s':>13} {'(per CPU s)':>12} {'peak RSS':>9} {'B/agent':>8} {'B/created':>9} {'vs Mesa':>8}"
              f" {'(CPU)':>7}"
              f" {'desk':>5} {'CS':>5}")
    lines = [header, "-" * len(header)]
    for r in results:
        ratio = f"{r['ratio_vs_mesa']:.1f}x" if "ratio_vs_mesa" in r else ""
        ratio_cpu = f"{r['ratio_vs_mesa_cpu']:.1f}x" if "ratio_vs_mesa_cpu" in r else ""
        lines.append(f"{r['name']:<28} {r['engine']:<8} {r['market']:<8} {r['agents']:>9,} {r['days']:>4} "
                     f"{r['seconds']:>8.2f} {r['agent_days_per_s'] / 1e6:>12.2f}M "
                     f"{r['agent_days_per_cpu_s'] / 1e6:>11.2f}M "
                     f"{r['peak_rss_bytes'] / 2**20:>7.0f}MB {r['peak_rss_per_agent']:>8.0f} "
                     f"{r['peak_rss_per_agent_created']:>9.0f}"
                     f" {ratio:>8} {ratio_cpu:>7}"
                     f" {_percent(r.get('desk_share')):>5} {_percent(r.get('cs_share')):>5}")
    notes = [f"  {r['name']}: {r['note']}" for r in results if r["note"]]
    if notes:
        lines += ["", "notes:", *notes]
    return "\n".join(lines)


VERDICT = {True: "met", False: "MISSED", None: "not run"}
"""How a target stands, as ``twosided bench`` and README's table say it."""

RECORD = ROOT / "benchmarks" / "results" / "bench.json"
"""The bench run of record: README's performance table is generated from it (``make docs``)."""


def readme_table(results: list[dict] | None = None) -> list[str]:
    """README's performance table (markdown lines) from a bench.json (default: :data:`RECORD`)."""
    if results is None:
        results = json.loads(RECORD.read_text())
    lines = ["| case | agents at start | agents created | days | seconds | of which the days | agent-days/s | "
             "per CPU second | peak RSS | per agent created | vs Mesa reference (the days) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        ratio = f"{r['ratio_vs_mesa']:.1f}x" if "ratio_vs_mesa" in r and r["engine"] != "mesa" else ""
        days = f"{r['simulation_seconds']:.2f}" if r.get("simulation_seconds") is not None else ""
        lines.append(f"| {r['name']} | {r['agents']:,} | {r['agents_created']:,} | {r['days']} | {r['seconds']:.2f} | "
                     f"{days} | "
                     f"{r['agent_days_per_s'] / 1e6:.1f}M | {r['agent_days_per_cpu_s'] / 1e6:.1f}M | "
                     f"{r['peak_rss_bytes'] / 2**20:,.0f} MB | {r['peak_rss_per_agent_created']:.0f} B | {ratio} |")
    lines += ["", "| target | measured | verdict |", "|---|---|---|"]
    for target, measured, met in target_checks(results):
        lines.append(f"| {target} | {measured} | {VERDICT[met]} |")
    loads = [load for r in results for load in r.get("load_average", [])]
    dates = sorted({r.get("date", "?") for r in results})
    lines += ["", f"`twosided bench` on {', '.join(dates)}: {results[0]['machine']}; load average at the start "
                  f"of each run {min(loads):.2f}-{max(loads):.2f}. Each case is the median of its runs, each "
                  "run a fresh single-core process; seconds are wall time. Generated from "
                  "benchmarks/results/bench.json by `make docs`."]
    return lines
