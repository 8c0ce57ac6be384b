"""Pure polars transforms: order events (and fills) in, analysis tables out. No I/O.

Every table's function takes the events (a ``pl.LazyFrame`` or ``pl.DataFrame`` in the
``order_events`` schema, see :mod:`orderwatch_dagster.tables`), the UTC day ``YYYY-MM-DD`` and
its parameters (the lifecycles and the daily stats also the ``fills`` table: fills before the
day's end count), and returns a ``pl.DataFrame`` in the table's schema. Events may include any
history before the day (needed for orders that span days); events after the day's end are
ignored. All work is vectorized polars expressions, so the same functions run on a day of
MongoDB documents or on a whole Parquet history.

One module per table, each with the checks of that table: ``events`` (``order_events``),
``fills``, ``lifecycles`` (``order_lifecycles``), ``alerts`` (``large_change_alerts``),
``open_orders`` (``open_orders_snapshot``), ``positions`` (``positions_snapshot``),
``daily_stats`` (``trader_daily_stats``); what they share is in ``common`` and ``chains``
(amend chains).
"""
