"""Several machines starting at once on an empty PostgreSQL database: every one of them comes up
(the schema is created once, under a lock), none dies of a duplicate-table error. Skipped when the
PostgreSQL server binaries are missing."""

from __future__ import annotations

import threading

from tests.files.test_postgres import pg_url  # noqa: F401 - the module's PostgreSQL cluster

STARTS = 4


def test_concurrent_first_starts_all_succeed(pg_url):  # noqa: F811 - the imported fixture
    from voxscope.storage.database import Database

    barrier = threading.Barrier(STARTS)
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            Database(pg_url).close()  # what `serve`, `worker` and `keys` do first
        except BaseException as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(STARTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, [repr(e)[:300] for e in errors]
    Database(pg_url).close()  # and a later start finds the schema as it is
