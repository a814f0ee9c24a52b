"""gunicorn settings and hooks of `chainmatch serve` (loaded as `-c python:webapp.gunicorn_config`).

Only gunicorn settings live at module level here: gunicorn reads every module-level name as a setting.
The command line of `chainmatch serve` adds the bind address, the worker and thread counts.
"""

from __future__ import annotations

# Threaded workers: the main loop of each worker keeps answering the arbiter's liveness check while request
# threads work, so a long request (an upload, a placement run's first seconds) never gets the worker killed.
worker_class = "gthread"
# A worker loads the saved match index before it takes requests (post_worker_init); at large pools that takes
# minutes, so the start-up allowance is generous. It does not bound request time with gthread workers.
timeout = 900
graceful_timeout = 30
keepalive = 5
accesslog = None  # the app logs every request itself (chainmatch.request), with a request id
errorlog = "-"
proc_name = "chainmatch"
# gunicorn ≥ 25's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl): several servers
# (an instance and a benchmark) would fight over it. Older versions ignore the unknown setting.
control_socket_disable = True


def post_worker_init(worker) -> None:
    """Load the saved match engine into this worker once, before its first request (not per request)."""
    from webapp.services.match.serving import preload

    status = preload(worker.wsgi)
    worker.log.info("worker %s: match index %s", worker.pid, status)


def on_starting(server) -> None:
    """Start the task worker (`chainmatch worker`) beside the arbiter: imports, placement runs and embedding run
    there, not in the web workers. It is stopped in `on_exit` (and ends by itself when the arbiter dies)."""
    from webapp.services.tasks.worker import start_beside_server

    server.chainmatch_task_worker = start_beside_server()


def on_exit(server) -> None:
    """Stop the task worker started in `on_starting`."""
    from webapp.services.tasks.worker import stop

    stop(getattr(server, "chainmatch_task_worker", None))
