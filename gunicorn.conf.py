"""gunicorn's settings beyond the Procfile's command line (gunicorn reads ./gunicorn.conf.py from
the folder it starts in by itself).

- Prometheus multiprocess mode: every web worker and the queue's worker write their counts under
  ``PROMETHEUS_MULTIPROC_DIR`` (default ``var/metrics``), which ``/metrics`` adds up. It has to be
  set here, in the master, before any worker imports prometheus_client.
- gunicorn's own log lines as JSON, like the app's (see ``service.logs``).
- Each web worker freezes what loading the app made (``gc.freeze``), so the garbage collector
  never walks those objects again: the app's import-time heap is most of what it would scan.
- Slow clients: the service faces the internet, where a client may send its request a byte at
  a time. A sync worker is held by each such connection (two of them stopped the whole service
  until gunicorn's 30 s timeout), and a gthread worker by each thread one holds. gevent's
  workers serve each connection in a greenlet of its own, so a slow client holds only that:
  up to ``worker_connections`` per worker, and a request line and headers not sent in full
  within ``keepalive`` seconds end the connection (gunicorn's gevent worker reads them under
  that timeout). A body trickled slowly holds its own greenlet only. What the web process uses
  waits cooperatively once gevent has patched the standard library, which its worker does
  before loading the app: sockets (redis-py, psycopg's select-based wait, which psycopg picks
  when it sees gevent's patching), sleeps and locks (the SQLite queue's lock waits); SQLite's
  own calls are short and run in place. The README's "Running it" says what a proxy adds.
- gunicorn's control socket (``gunicornc``) is off: nothing uses it, and its default path in
  the home folder is shared by every gunicorn on the machine.
"""

import gc

from service.metrics import prepare_multiprocess

prepare_multiprocess()

logger_class = "webhooks.access_log.GunicornLogger"

worker_class = "gevent"
worker_connections = 1000  # connections, slow ones included, one web worker holds at once
keepalive = 5  # idle seconds between requests, and the most a request's headers may take
timeout = 30  # a worker that stops answering its master this long is replaced
control_socket_disable = True


def post_worker_init(worker):
    gc.freeze()


def child_exit(server, worker):
    from service.metrics import process_exited

    process_exited(worker.pid)
