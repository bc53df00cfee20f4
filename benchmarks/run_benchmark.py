"""Benchmark the full pipeline against the write-up's approach at several book sizes.

For each N: generate the book as Parquet with ``loan-recovery generate``, run
the full build (``dbt build --selector full_build``: every model and data
test, as ``loan-recovery build`` runs it; the unit tests are CI's) on it
through ``loans_path`` into a fresh DuckDB file, and record wall time, CPU time
(user and system, of the whole process tree), peak memory (RSS summed over
the whole process tree, sampled every 50 ms), each model's
time from dbt's run_results.json and the model's quality. Beside it, at the
same N, time the write-up's approach (benchmarks/writeup_baseline.py) on the
same book as CSV, and report the ratio. Also times the bundled sample build.

``--decide`` also runs the monthly decision run on the same book with the
models the training build saved (``dbt build --selector decision_run``,
``decide_only``, as ``loan-recovery build --model VERSION --decide-only``
runs it) and checks that its open-loan scores, strategies and reasons are
the frozen full build's (``--decide`` implies ``--frozen``).

Usage:
    .venv/bin/python benchmarks/run_benchmark.py                  # 100k, 1M, 10M
    .venv/bin/python benchmarks/run_benchmark.py --rows 1000000   # any N
    .venv/bin/python benchmarks/run_benchmark.py --rows 1000000 --decide
Results: a Markdown summary on stdout and JSON in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grade_open_loans import grade

from loan_recovery.config import reference
from loan_recovery.dbt_results import model_timings
from loan_recovery.modelling.registry import model_facts, register

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = PROJECT / "benchmarks" / "results"
SEED = 42


@dataclass
class Measured:
    seconds: float
    peak_rss_mb: float
    returncode: int
    output: str = field(repr=False)
    peak_at: datetime | None = None
    """When the process tree's RSS peaked (UTC), to name the models running then."""
    cpu_seconds: float = 0.0
    """User and system CPU of the command and every process it waited for.

    On two cores a build cannot take less than half of it: the floor the
    time targets meet (docs/benchmark.md, seventh session)."""


def _tree_rss_kb(root: int) -> int:
    """RSS of ``root`` and all its descendants, from /proc (0 for vanished processes)."""
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            total += next(
                int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
            )
            for task in Path(f"/proc/{pid}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(child) for child in children)
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total


def measure(command: list[str], env: dict[str, str] | None = None) -> Measured:
    """Run ``command`` in the project, sampling the process tree's RSS until it exits."""
    used_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=PROJECT, env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    peak = 0
    peak_at: datetime | None = None
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_at
        while not done.is_set():
            rss = _tree_rss_kb(process.pid)
            if rss > peak:
                peak, peak_at = rss, datetime.now(UTC).replace(tzinfo=None)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    done.set()
    sampler.join()
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = used.ru_utime - used_before.ru_utime + used.ru_stime - used_before.ru_stime
    return Measured(
        round(time.perf_counter() - started, 2),
        round(peak / 1024, 1),
        process.returncode,
        output,
        peak_at,
        round(cpu, 1),
    )


def running_at(run_results: dict[str, Any], moment: datetime | None) -> list[str]:
    """The models dbt was executing at ``moment`` (run_results' execute timings are UTC)."""
    if moment is None:
        return []
    running = []
    for result in run_results.get("results", []):
        if not str(result.get("unique_id", "")).startswith("model."):
            continue
        for timing in result.get("timing", []):
            if timing.get("name") != "execute" or not timing.get("started_at"):
                continue
            start = datetime.fromisoformat(timing["started_at"].rstrip("Z"))
            end = datetime.fromisoformat(timing["completed_at"].rstrip("Z"))
            if start <= moment <= end:
                running.append(str(result["unique_id"]).rsplit(".", 1)[-1])
    return running


OPEN_SHARE = 0.3


def truth_of(rows: int, workdir: Path) -> Path:
    return workdir / f"truth_{rows}.parquet"


def generate(rows: int, suffix: str, workdir: Path) -> Path:
    """The deterministic book of ``rows`` loans, 30 % open, and its truth file (reused)."""
    path = workdir / f"book_{rows}.{suffix}"
    if not path.exists():
        subprocess.run(
            [str(BIN / "loan-recovery"), "generate", "--rows", str(rows), "--out", str(path),
             "--seed", str(SEED), "--open-share", str(OPEN_SHARE),
             "--truth-out", str(truth_of(rows, workdir))],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return path


OPEN_LOAN_CHECKSUM = (
    "select sum(hash(loan_id || ':' || coalesce(loss_probability, -1)::varchar || ':' "
    "|| segment_risk_score::varchar || ':' || coalesce(reason_code_1, '') || ':' "
    "|| coalesce(reason_code_2, '') || ':' || coalesce(reason_code_3, '') || ':' "
    "|| strategy_code)) % 1000000007 from main.recovery_strategies where not is_resolved"
)
"""Open loans' scores, reasons and strategies in one number: the decision run's must be the
full build's."""


def register_saved(workdir: Path, name: str) -> str:
    """Register the models build ``name`` saved in ``workdir/registry``; their version."""
    return register(
        workdir / f"models_{name}",
        workdir / "registry",
        facts=model_facts(reference()),
        model_card=[],
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


def dbt_build(
    workdir: Path,
    name: str,
    loans: Path | None,
    rows: int = 0,
    model_version: str = "",
    *,
    decide_only: bool = False,
) -> dict[str, Any]:
    """A build into a fresh DuckDB file; returns timings, memory and quality.

    With ``model_version`` the build scores with that artifact of
    ``workdir/registry`` and trains nothing; ``decide_only`` (with it) makes
    it the decision run, which has no model card.
    """
    database = workdir / f"{name}.duckdb"
    database.unlink(missing_ok=True)
    target = workdir / f"target_{name}"
    selector = "decision_run" if decide_only else "full_build"
    command = [
        str(BIN / "dbt"), "build", "--selector", selector,
        "--target-path", str(target), "--log-path", str(workdir),
    ]  # fmt: skip
    settings: dict[str, Any] = {"loans_path": str(loans)} if loans else {}
    if model_version:
        settings["model_version"] = model_version
    if decide_only:
        settings["decide_only"] = True
    if settings:
        command += ["--vars", json.dumps(settings)]
    load_average = os.getloadavg()
    run = measure(
        command,
        env={
            "LOAN_RECOVERY_DB": str(database),
            "LOAN_RECOVERY_MODEL_DIR": str(workdir / f"models_{name}"),
            "LOAN_RECOVERY_REGISTRY": str(workdir / "registry"),
        },
    )
    if run.returncode != 0:
        raise SystemExit(f"dbt build failed for {name}:\n{run.output[-3000:]}")
    run_results = json.loads((target / "run_results.json").read_text())
    results = run_results["results"]
    models = {name: round(seconds, 2) for name, seconds in model_timings(run_results)}
    tests = sum(1 for item in results if item["unique_id"].split(".")[0] in {"test", "unit_test"})
    with duckdb.connect(str(database), read_only=True) as connection:
        card = {
            row[0]: row[1:]
            for row in connection.execute(
                "select score_name, evaluated_loans, roc_auc, label_roc_auc, training_rows, "
                "model_version from main.risk_model_metrics"
            ).fetchall()
        } if not decide_only else {}  # fmt: skip
        (open_checksum,) = connection.execute(OPEN_LOAN_CHECKSUM).fetchone() or (None,)
        scored, reasoned, risk_raised, checksum = connection.execute(
            "select count(*), count(reason_code_1) filter (where is_worked), "
            "count(reason_code_1) filter (where reason_code_1 <> 'R00'), "
            "sum(hash(loan_id || ':' || coalesce(loss_probability, -1)::varchar || ':' "
            "|| segment_risk_score::varchar || ':' || coalesce(reason_code_1, '') || ':' "
            "|| strategy_code)) % 1000000007 from main.recovery_strategies"
        ).fetchone()
    graded = grade(database, truth_of(rows, workdir)) if rows else {}
    database.unlink(missing_ok=True)
    if decide_only:
        card = {"outcome": (None,) * 5, "segment": (None,) * 5}
    return {
        "seconds": run.seconds,
        "cpu_seconds": run.cpu_seconds,
        "peak_rss_mb": run.peak_rss_mb,
        "peak_during": running_at(run_results, run.peak_at),
        "tests_run": tests,
        "model_seconds": models,
        "scored_loans": scored,
        "loans_with_reasons": reasoned,
        "loans_with_risk_raising_reasons": risk_raised,
        "outcome_training_rows": card["outcome"][3],
        "resolved_auc_outcome": None if decide_only else round(card["outcome"][1] or 0, 4),
        "open_auc_outcome": (graded.get("auc_outcome") or [None])[0],
        "open_auc_segment": (graded.get("auc_segment") or [None])[0],
        "open_auc_days_past_due": (graded.get("auc_days_past_due") or [None])[0],
        "open_ece_outcome": graded.get("ece_outcome"),
        "label_auc_segment": None if card["segment"][2] is None else round(card["segment"][2], 4),
        "model_version": card["outcome"][4],
        "score_checksum": int(checksum),
        "open_loan_checksum": None if open_checksum is None else int(open_checksum),
        "load_average": load_average,
        # the 1, 5 and 15 minute load average as the build started (2 cores here)
    }


def baseline(book: Path) -> dict[str, Any]:
    load_average = os.getloadavg()
    run = measure([sys.executable, str(PROJECT / "benchmarks" / "writeup_baseline.py"), str(book)])
    if run.returncode != 0:
        raise SystemExit(f"write-up baseline failed:\n{run.output[-3000:]}")
    return {
        **json.loads(run.output.strip().splitlines()[-1]),
        "peak_rss_mb": run.peak_rss_mb,
        "cpu_seconds": run.cpu_seconds,
        "load_average": load_average,
    }


def machine() -> dict[str, Any]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(memory_kb / 1024**2, 1),
            "python": platform.python_version(), "duckdb": duckdb.__version__}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument(
        "--baseline-max-rows",
        type=int,
        default=1_000_000,
        help="skip the write-up baseline above this N (it needs ~140 s at 1M and grows faster)",
    )
    parser.add_argument(
        "--repeat",
        action="store_true",
        help="build each N twice and check the scores are identical",
    )
    parser.add_argument(
        "--frozen",
        action="store_true",
        help="also score each book with the models its training build saved (nothing trained)",
    )
    parser.add_argument(
        "--decide",
        action="store_true",
        help="also run the monthly decision run on each book with the models its training "
        "build saved (open loans only), and compare its open-loan scores with the frozen full "
        "build's (implies --frozen)",
    )
    parser.add_argument(
        "--skip-sample", action="store_true", help="do not time the bundled sample build"
    )
    parser.add_argument(
        "--workdir", type=Path, help="where books and databases go (default: a temp dir)"
    )
    args = parser.parse_args()  # fmt: skip

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="loan-recovery-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "machine": machine(),
        "sample": None if args.skip_sample else dbt_build(workdir, "sample", None),
        "sizes": [],
    }
    for rows in args.rows:
        entry: dict[str, Any] = {
            "rows": rows,
            "pipeline": dbt_build(workdir, f"n{rows}", generate(rows, "parquet", workdir), rows),
        }
        if args.repeat:
            again = dbt_build(workdir, f"n{rows}_again", generate(rows, "parquet", workdir), rows)
            entry["deterministic"] = again["score_checksum"] == entry["pipeline"]["score_checksum"]
        version = register_saved(workdir, f"n{rows}") if args.frozen or args.decide else ""
        if args.frozen or args.decide:
            frozen = dbt_build(
                workdir, f"n{rows}_frozen", generate(rows, "parquet", workdir), rows, version
            )
            entry["frozen"] = frozen
        if args.decide:
            decision = dbt_build(
                workdir,
                f"n{rows}_decision",
                generate(rows, "parquet", workdir),
                rows,
                version,
                decide_only=True,
            )
            entry["decision"] = decision
            # Against the frozen full build: the same model on the same book. (A training
            # build's segment score gives the open loans it trained on out-of-bag scores.)
            entry["decision_same_open_loan_scores"] = (
                decision["open_loan_checksum"] == entry["frozen"]["open_loan_checksum"]
            )
        if rows <= args.baseline_max_rows:
            entry["writeup"] = baseline(generate(rows, "csv", workdir))
            entry["speedup"] = round(entry["writeup"]["seconds"] / entry["pipeline"]["seconds"], 2)
            if args.decide:
                entry["decision_speedup"] = round(
                    entry["writeup"]["seconds"] / entry["decision"]["seconds"], 2
                )
        report["sizes"].append(entry)
        print(json.dumps(entry), file=sys.stderr)

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"benchmark-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(summary(report))
    print(f"\nfull results: {out}")


def summary(report: dict[str, Any]) -> str:
    m, sample = report["machine"], report["sample"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GiB; "
        f"Python {m['python']}, DuckDB {m['duckdb']}",
        f"bundled sample: dbt build {sample['seconds']} s on {sample['cpu_seconds']} s of CPU, "
        f"peak {sample['peak_rss_mb']} MB"
        if sample
        else "bundled sample: not run",
        "",
        "| loans | dbt build (s) | CPU (s) | peak RSS (MB) | loans scored | with reasons "
        "| outcome AUC, open | write-up (s) | write-up scored | speed-up |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in report["sizes"]:
        p, w = entry["pipeline"], entry.get("writeup")
        writeup = (
            f"{w['seconds']} | {w['scored_rows']:,} | {entry['speedup']}x"
            if w
            else "not run | - | -"
        )
        lines.append(
            f"| {entry['rows']:,} | {p['seconds']} | {p['cpu_seconds']} | {p['peak_rss_mb']:,.0f} "
            f"| {p['scored_loans']:,} | {p['loans_with_reasons']:,} | {p['open_auc_outcome']} "
            f"| {writeup} |"
        )
    for entry in report["sizes"]:
        if "decision" in entry:
            d = entry["decision"]
            speedup = entry.get("decision_speedup")
            lines.append(
                f"decision run at {entry['rows']:,}: {d['seconds']} s on {d['cpu_seconds']} s of "
                f"CPU, peak {d['peak_rss_mb']:,.0f} MB, {d['scored_loans']:,} open loans scored, "
                f"{d['tests_run']} tests, load average {d['load_average'][0]:.2f}"
                + (f", {speedup}x the write-up" if speedup else "")
                + f"; same open-loan scores as the full build: "
                f"{entry['decision_same_open_loan_scores']}"
            )
    lines.append("")
    for entry in report["sizes"]:
        timings = sorted(entry["pipeline"]["model_seconds"].items(), key=lambda item: -item[1])
        slowest = ", ".join(f"{model} {seconds} s" for model, seconds in timings[:4])
        lines.append(f"slowest models at {entry['rows']:,}: {slowest}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
