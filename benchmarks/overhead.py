"""The fixed cost around jobs: how much of the quick preset is the methods themselves.

    python benchmarks/overhead.py                       # imports, planning, and the quick preset run anew
    python benchmarks/overhead.py --results quick_bench # the quick preset's figures from an earlier run
    python benchmarks/overhead.py --root ../other/tree  # the same for another checkout (e.g. an older commit)

Prints the machine (CPU model, cores, load), then
- import CPU seconds per job kind: a fresh interpreter importing each rule's step module (from the rule files'
  ``step=`` params), with the bare interpreter and the Snakemake script preamble every job also pays;
- planning CPU seconds (``snakemake -n``) for the quick preset and each paper grid at its full scale;
- for the quick preset (run under ``--config name=<name>``, so results/quick is left alone): wall time, the sum
  of job times per rule (Snakemake's own start and end times in .snakemake/metadata) and the share of the
  unlearning jobs' time that is method time (run.json's ``seconds``);
with the targets beside: method time >= 60 % of unlearning job time, planning < 3 CPU s per grid, the quick
preset < 2 minutes on 2 cores. The machine is often shared: read the load beside the figures.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_METHOD_SHARE, TARGET_PLANNING_S, TARGET_QUICK_S = 0.60, 3.0, 120.0


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    names = re.findall(r"model name\s*:\s*(.+)", cpuinfo.read_text()) if cpuinfo.exists() else []
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"{names[0] if names else 'unknown CPU'}, {os.cpu_count()} cores, load average {load} (1, 5, 15 min)"


def run_cpu(cmd: list[str], root: Path, **kwargs) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of a child process, user + system."""
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "OMP_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=root, env=env, check=True, **kwargs)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall


def step_modules(root: Path) -> dict[str, list[str]]:
    """Step module -> the rules that call it, from the rule files' ``step=step("<stage>.<function>")`` params
    (``unlearnbench.steps.<stage>``; earlier trees: ``step="<module>.<function>"``)."""
    modules = defaultdict(list)
    for path in sorted((root / "workflow" / "rules").glob("*.smk")):
        rule = None
        for line in path.read_text().splitlines():
            if match := re.match(r"rule (\w+):", line):
                rule = match.group(1)
            elif match := re.search(r"""step\s*=\s*step\(["'](\w+)\.\w+["']\)""", line):  # steps/<stage>.py
                modules[f"steps.{match.group(1)}"].append(rule)
            elif match := re.search(r"""step\s*=\s*["']([\w.]+)\.\w+["']""", line):  # before steps/: module.function
                modules[match.group(1)].append(rule)
    return dict(modules)


def import_costs(root: Path, repeat: int) -> list[tuple[str, str, float, str]]:
    """(what, rules, CPU s, heavy modules loaded) per job kind; the minimum over ``repeat`` fresh interpreters."""
    probe = ("import sys; {}; print(','.join(m for m in ('torch', 'torchvision', 'torch._dynamo', 'sklearn', "
             "'matplotlib') if m in sys.modules))")
    kinds = [("python (bare interpreter)", "every job", "pass"),
             ("snakemake.script (preamble)", "every job", "import snakemake.script")]
    kinds += [(f"unlearnbench.{m}", ", ".join(rules), f"import unlearnbench.{m}")
              for m, rules in step_modules(root).items()]
    rows = []
    for what, rules, statement in kinds:
        best, loaded = float("inf"), ""
        for _ in range(repeat):
            out = subprocess.run([sys.executable, "-c", probe.format(statement)], cwd=root, capture_output=True,
                                 text=True, env={**os.environ, "PYTHONPATH": str(root / "src")})
            if out.returncode:
                loaded = "import failed: " + (out.stderr.strip().splitlines() or ["?"])[-1]
                break
            cpu, _ = run_cpu([sys.executable, "-c", statement], root)
            best, loaded = min(best, cpu), out.stdout.strip()
        rows.append((what, rules, best, loaded))
    return rows


def planning_costs(root: Path) -> list[tuple[str, float]]:
    configs = [root / "config" / "quick.yaml", *sorted((root / "config" / "papers").glob("*.yaml"))]
    rows = []
    for config in configs:
        cmd = [sys.executable, "-m", "snakemake", "-n", "--quiet", "all", "--configfile", str(config.relative_to(root))]
        try:
            cpu, _ = run_cpu(cmd, root, capture_output=True)
        except subprocess.CalledProcessError:
            cpu = float("nan")
        rows.append((config.stem, cpu))
    return rows


def run_quick(root: Path, name: str) -> tuple[float, float]:
    for folder in ("results", "figures"):
        shutil.rmtree(root / folder / name, ignore_errors=True)
    cmd = [sys.executable, "-m", "snakemake", "--configfile", "config/quick.yaml", "--config", f"name={name}",
           "--quiet", "all"]
    return run_cpu(cmd, root)


def job_times(root: Path, name: str) -> tuple[dict[str, list[float]], float]:
    """Per rule, the wall seconds of each job of the run ``name`` (from Snakemake's metadata), and their span."""
    jobs = {}  # (rule, job hash) -> (start, end); each output has its own record
    for path in (root / ".snakemake" / "metadata").iterdir():
        try:
            output = base64.b64decode(path.name, altchars=b"+_").decode()
        except ValueError:
            continue
        if not output.startswith((f"results/{name}/", f"figures/{name}/")):
            continue
        record = json.loads(path.read_text())
        if record.get("starttime") and record.get("endtime"):
            key = record["rule"], record["job_hash"]
            start, end = jobs.get(key, (record["starttime"], record["endtime"]))
            jobs[key] = min(start, record["starttime"]), max(end, record["endtime"])
    per_rule = defaultdict(list)
    for (rule, _), (start, end) in jobs.items():
        per_rule[rule].append(end - start)
    span = max(e for _, e in jobs.values()) - min(s for s, _ in jobs.values()) if jobs else float("nan")
    return dict(per_rule), span


def method_seconds(root: Path, name: str) -> float:
    return sum(json.loads(p.read_text())["seconds"] for p in (root / "results" / name).glob("*/seed*/*/*/run.json"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO, help="the checkout to measure (default: this one)")
    parser.add_argument("--results", metavar="NAME", help="read an earlier quick run results/NAME instead of running")
    parser.add_argument("--name", default="quick_bench", help="results name of the quick run (default quick_bench)")
    parser.add_argument("--repeat", type=int, default=3, help="interpreters per import measurement (minimum kept)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["imports", "planning", "quick"])
    args = parser.parse_args()
    root = args.root.resolve()
    print(f"machine: {machine()}\ncheckout: {root}")

    if "imports" not in args.skip:
        print("\nimport CPU seconds per job kind (fresh interpreter, minimum of", args.repeat, "runs)")
        for what, rules, cpu, loaded in import_costs(root, args.repeat):
            print(f"  {what:<34} {cpu:6.2f} s  rules: {rules:<40} loads: {loaded or '-'}")

    if "planning" not in args.skip:
        print(f"\nplanning CPU seconds (snakemake -n, full scale)   target < {TARGET_PLANNING_S:.0f} s per grid")
        for grid, cpu in planning_costs(root):
            print(f"  {grid:<16} {cpu:6.2f} s  {'ok' if cpu < TARGET_PLANNING_S else 'over'}")

    if "quick" not in args.skip:
        name = args.results or args.name
        wall = cpu = None
        if not args.results:
            cpu, wall = run_quick(root, name)
        per_rule, span = job_times(root, name)
        total = sum(sum(v) for v in per_rule.values())
        print(f"\nquick preset (results/{name}); load now {os.getloadavg()[0]:.2f}")
        if wall is not None:
            verdict = "ok" if wall < TARGET_QUICK_S else "over"
            print(f"  wall {wall:.1f} s, CPU {cpu:.1f} s (target < {TARGET_QUICK_S:.0f} s on 2 cores: {verdict})")
        print(f"  jobs' span {span:.1f} s; {sum(map(len, per_rule.values()))} jobs, {total:.1f} s of job time")
        for rule, times in sorted(per_rule.items(), key=lambda kv: -sum(kv[1])):
            print(f"    {rule:<16} {len(times):3d} jobs {sum(times):7.1f} s  ({sum(times) / len(times):.2f} s per job)")
        unlearn, method = sum(per_rule.get("unlearn", [])), method_seconds(root, name)
        if unlearn:
            share = method / unlearn
            verdict = "ok" if share >= TARGET_METHOD_SHARE else "under"
            print(f"  method time {method:.1f} s of {unlearn:.1f} s unlearning job time: {share:.0%} "
                  f"(target >= {TARGET_METHOD_SHARE:.0%}: {verdict})")


if __name__ == "__main__":
    main()
