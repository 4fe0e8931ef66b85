"""touchpoint.sinks: the pipeline's topics in ClickHouse, exactly once per store, and the analyst layer on top.

`loop.SinkLoop` consumes and stores (see its module docstring for the guarantee and the commit protocol),
`service.run_sink` is the `touchpoint sink` process, `migrations.migrate` applies `ddl/*.sql`.
Tables, views and which of them read FINAL/argMax: sinks/README.md.
"""
