"""Shared set-up for bench scripts: Django on the database named by DATABASE_URL (PostgreSQL)."""

import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def django_setup(*, require_postgres: bool = True, migrate: bool = True):
    import django

    if require_postgres and not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.exit("Set DATABASE_URL to a PostgreSQL database made for benchmarking (it will be filled).")
    django.setup()
    from django.core.management import call_command

    if migrate:
        call_command("migrate", verbosity=0, interactive=False)


def percentile(ordered: list[float], p: float) -> float:
    """The p-th percentile of sorted samples (nearest rank)."""
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(label: str, samples_ms: list[float], cpu_ms: list[float] | None = None) -> str:
    """Median, p95, p99 and max of wall times; with `cpu_ms` (time.process_time of each sample),
    the CPU time of this process too, which the other loads of a shared machine move much less."""
    ordered = sorted(samples_ms)
    line = (
        f"{label:<44} n={len(ordered):>6}  median={statistics.median(ordered):7.3f} ms  "
        f"p95={percentile(ordered, 95):7.3f} ms  p99={percentile(ordered, 99):7.3f} ms  max={ordered[-1]:8.3f} ms"
    )
    if cpu_ms:
        cpu = sorted(cpu_ms)
        line += f"  | cpu median={statistics.median(cpu):6.3f} ms  p95={percentile(cpu, 95):6.3f} ms"
    return line


def rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
