"""gunicorn settings for `make run`: the production server on 127.0.0.1:$PORT."""

import os

bind = f"127.0.0.1:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
timeout = 120
accesslog = "-"
