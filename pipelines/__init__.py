"""nymble-sync: moves ERP and PIM data into Nymble Commerce through its bulk APIs.

The data path, one stage package each: ``extract`` (CSV, Parquet, SQL in chunks) →
``entities`` (products, orders, customers: how rows become records) → ``transform``
(conversions, serialization, rejects) → ``admit`` (diff against the ledger) → ``quality``
(row checks, gates, expectation suites) → ``load`` (batches, pacing, HTTP) → ``run`` (the
one engine behind ``run``, ``plan`` and ``validate``) → ``ledger``. ``jobs`` parses job files,
``ops`` serves operators (doctor, progress, run reports), ``emulator`` is the local API.
"""
