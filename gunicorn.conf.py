"""gunicorn's settings beyond the Procfile's command line (gunicorn reads ./gunicorn.conf.py from
the folder it starts in by itself).

- Prometheus multiprocess mode: every web worker and the queue's worker write their counts under
  ``PROMETHEUS_MULTIPROC_DIR`` (default ``var/metrics``), which ``/metrics`` adds up. It has to be
  set here, in the master, before any worker imports prometheus_client.
- gunicorn's own log lines as JSON, like the app's (see ``service.logs``).
- Each web worker freezes what loading the app made (``gc.freeze``), so the garbage collector
  never walks those objects again: the app's import-time heap is most of what it would scan.
"""

import gc

from service.metrics import prepare_multiprocess

prepare_multiprocess()

logger_class = "webhooks.access_log.GunicornLogger"


def post_worker_init(worker):
    gc.freeze()


def child_exit(server, worker):
    from service.metrics import process_exited

    process_exited(worker.pid)
