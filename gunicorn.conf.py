"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py wsgi:app` (what `make serve` runs).

Every value can be overridden on the command line or by the environment variables named below."""
import multiprocessing
import os

bind = os.environ.get("BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"

# Load the app once in the master and fork workers from it: a replacement for a killed worker
# is serving within milliseconds instead of importing everything again.
preload_app = True

# Sync workers, CPU-bound (README "Benchmarks"): 2 x cores + 1, capped; WEB_CONCURRENCY overrides.
workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * multiprocessing.cpu_count() + 1, 12))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))  # a stuck worker is killed and replaced
graceful_timeout = 20  # on stop or HUP, requests in flight get this long to finish
keepalive = 5  # behind a proxy that keeps connections open
max_requests = 5000  # recycle workers now and then (bounded memory growth), staggered by the jitter
max_requests_jitter = 500
control_socket_disable = True  # gunicorn 27's control socket: unused, and one fixed path per host

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# The id is the X-Request-ID the app answered with (crm/core/requestid.py); %(M)s is milliseconds.
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s "%(a)s"'


def post_fork(server, worker):
    """Each worker opens its own database connections: none made in the master may be shared."""
    import sys
    wsgi = sys.modules.get("wsgi")
    if wsgi is None:  # not preloaded (or another app): the worker has opened nothing yet
        return
    from crm.extensions import db
    with wsgi.app.app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)
