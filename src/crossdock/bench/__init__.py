"""The benchmark kept in the repository (``crossdock bench``).

It measures, on the machine it runs on and on SQLite and/or PostgreSQL: a plain ASGI
baseline, durable webhook ingest, end-to-end delivery throughput, latency at a fixed
offered rate and peak memory. See ``docs/benchmark.md`` for the method and the figures.

Modules: :mod:`~crossdock.bench.runner` (the phases and the report),
:mod:`~crossdock.bench.plain` (the baseline app), :mod:`~crossdock.bench.wrk` (wrk and its
Lua scripts), :mod:`~crossdock.bench.loadgen` (the open-loop generator) and
:mod:`~crossdock.bench.project` (the bench project).
"""
