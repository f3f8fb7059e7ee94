"""Cold start: importing each function's main.py against the floor every function pays.

    python bench/bench_coldstart.py            # 15 interleaved rounds (docs/operations-page.md has the figures)
    python bench/bench_coldstart.py --smoke    # 2 rounds, for CI: checks it runs, not how fast
    python bench/bench_coldstart.py --profile jobs   # the slowest imports of one function (-X importtime)

A Cloud Function's cold start is dominated by imports. The floor is
`import functions_framework, google.cloud.firestore` (the framework serves the request,
and every function reads Firestore); each function's main.py should cost at most 1.3x
that. Each sample is a fresh interpreter that times only the import, in CPU time of
that process (interpreter start-up is left out; imports are CPU-bound once the files
are in the page cache, and CPU time is what a busy neighbour disturbs least); baseline
and function samples alternate, and the figure is the median of the per-round ratios.
A second figure is steadier on a busy machine: the least CPU time, over the rounds, of
importing main.py in an interpreter that has loaded the floor already ("beyond").
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.3

BASELINE = "import functions_framework, google.cloud.firestore"
FUNCTION = (
    "import importlib.util, sys; sys.path.insert(0, {root!r}); "
    "spec = importlib.util.spec_from_file_location('main', {path!r}); "
    "module = importlib.util.module_from_spec(spec); sys.modules['main'] = module; spec.loader.exec_module(module)"
)
# CPU time of the import: on a shared machine wall time mostly measures the neighbours.
TIMER = "import time; _t = time.process_time()\n{code}\nprint(time.process_time() - _t)"
BEYOND = BASELINE + "\n" + TIMER


def functions() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "functions").glob("*/main.py"))


def sample(code: str, timer: str = TIMER) -> float:
    env = {"PYTHONDONTWRITEBYTECODE": "0", "GOOGLE_CLOUD_PROJECT": "demo-coldstart", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", timer.format(code=code)], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def function_code(name: str) -> str:
    return FUNCTION.format(root=str(ROOT), path=str(ROOT / "functions" / name / "main.py"))


def _importtime(code: str) -> dict[str, int]:
    """Self time in microseconds of every module the code imports (-X importtime)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, cwd=ROOT)
    times = {}
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            own, _, module = (part.strip() for part in line.removeprefix("import time:").split("|"))
            times[module] = int(own)
    return times


def _least_importtime(code: str, runs: int = 5) -> dict[str, int]:
    """The least self time of each module over a few runs: the noise of a busy machine only adds."""
    samples = [_importtime(code) for _ in range(runs)]
    return {module: min(s.get(module, 10**9) for s in samples) for module in samples[0]}


def profile(name: str, top: int = 15) -> None:
    """What a function imports beyond the floor, by top-level package, then by module."""
    floor = _importtime(BASELINE)
    extra = {m: t for m, t in _least_importtime(function_code(name)).items() if m not in floor}
    packages: dict[str, int] = {}
    for module, own in extra.items():
        packages[module.split(".")[0]] = packages.get(module.split(".")[0], 0) + own
    print(f"{name}: {sum(extra.values()) / 1000:.0f} ms of self time in {len(extra)} modules beyond the floor")
    for package, own in sorted(packages.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {own / 1000:8.1f} ms  {package}")
    print("  slowest modules:")
    for module, own in sorted(extra.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {own / 1000:8.1f} ms  {module}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="2 rounds: checks that it runs")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--profile", metavar="FUNCTION", help="print the slowest imports of one function")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    if args.profile:
        profile(args.profile)
        return 0
    rounds = 2 if args.smoke else args.rounds
    names = functions()
    sample(BASELINE)  # warm the disk cache and the bytecode cache once, for every sample alike
    for name in names:
        sample(function_code(name))
    baselines: list[float] = []
    ratios: dict[str, list[float]] = {name: [] for name in names}
    seconds: dict[str, list[float]] = {name: [] for name in names}
    beyond: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            base = sample(BASELINE)
            own = sample(function_code(name))
            baselines.append(base)
            seconds[name].append(own)
            ratios[name].append(own / base)
            beyond[name].append(sample(function_code(name), BEYOND))
    print(f"baseline ({BASELINE}): median {statistics.median(baselines) * 1000:.0f} ms CPU over {len(baselines)} samples")
    print(f"{'function':<10} {'CPU ms':>9} {'ratio':>6} {'beyond':>7}  (target <= {TARGET_RATIO}x, median of {rounds} "
          "interleaved ratios; beyond: least ms past the floor)")
    figures = {}
    for name in names:
        ratio = statistics.median(ratios[name])
        figures[name] = {"ms": round(statistics.median(seconds[name]) * 1000, 1), "ratio": round(ratio, 2),
                         "beyond_ms": round(min(beyond[name]) * 1000, 1)}
        flag = "" if ratio <= TARGET_RATIO else "  over target: run --profile " + name
        print(f"{name:<10} {figures[name]['ms']:>9.0f} {ratio:>6.2f} {figures[name]['beyond_ms']:>7.0f}{flag}")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
