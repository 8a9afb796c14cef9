"""The ``jira-impact`` command line (``commands.cli:main``): the worker, the delivery log,
``check``, ``webhook``, ``backfill`` and ``rerank``."""
