"""Shared set-up for bench scripts: Django on the database named by DATABASE_URL (PostgreSQL)."""

import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def django_setup(*, require_postgres: bool = True):
    import django

    if require_postgres and not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.exit("Set DATABASE_URL to a PostgreSQL database made for benchmarking (it will be filled).")
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def summary(label: str, samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)

    def pct(p):
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    return (
        f"{label:<44} n={len(ordered):>6}  median={statistics.median(ordered):7.3f} ms  "
        f"p95={pct(95):7.3f} ms  p99={pct(99):7.3f} ms  max={ordered[-1]:8.3f} ms"
    )


def rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
