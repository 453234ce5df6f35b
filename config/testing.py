"""Helpers for tests that race real database connections (PostgreSQL)."""

import threading

from django.db import connection


def race(*jobs):
    """Run each job in its own thread and database connection, all released at once; their
    results, in order. Any job's exception fails the caller."""
    barrier, results, errors = threading.Barrier(len(jobs)), [None] * len(jobs), []

    def run(i, job):
        try:
            barrier.wait()
            results[i] = job()
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    return results
