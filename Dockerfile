# syntax=docker/dockerfile:1
# Lucid session storage: one image, five roles. `docker run IMAGE api|storage|pipeline|recorder|
# processor` runs `python manage.py serve <role>` (see docs/topology.md and docker-compose.yml).

# --- builder: compilers and headers, only to install the requirements into a virtualenv ---------
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# Wheels exist for every pinned requirement on amd64 and arm64; the compiler is the fallback for
# platforms where one of them (zstandard, lz4) must be built from source.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.txt /tmp/requirements.txt
RUN pip install --requirement /tmp/requirements.txt

# --- runtime: the virtualenv and the code, nothing else ----------------------------------------
FROM python:3.11-slim AS runtime

# Everything the service writes goes under /data and to /tmp, so the root filesystem can be
# mounted read-only: docker-compose mounts named volumes (or tmpfs) there. The image declares no
# VOLUME, which would leave an anonymous volume behind wherever nothing is mounted.
# PROMETHEUS_MULTIPROC_DIR is left unset on purpose: gunicorn.conf.py creates a fresh directory
# under /tmp for each gunicorn role, while a Celery role given a directory that does not exist
# fails its /metrics.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    LUCID_BIND=0.0.0.0 \
    LUCID_STORAGE_PATH=/data/sessions \
    LUCID_CHUNK_STORE_PATH=/data/chunks \
    LUCID_BACKUP_PATH=/data/backups \
    DJANGO_STATIC_ROOT=/app/static

RUN groupadd --system --gid 10001 lucid \
    && useradd --system --uid 10001 --gid lucid --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin lucid

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY manage.py ./
COPY core ./core
COPY sessions_app ./sessions_app
COPY chunks_app ./chunks_app
COPY pipeline_app ./pipeline_app
COPY storage_app ./storage_app
COPY lucid ./lucid
COPY templates ./templates

# Static files and bytecode are made now: at run time the code directory is read-only. The key
# given here only lets the settings load; no image carries a key of its own.
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0 \
    && python -m compileall -q /app \
    && mkdir -p /data/sessions /data/chunks /data/backups \
    && chown -R 10001:10001 /data

USER 10001:10001

# api, storage, pipeline, recorder, processor: each role answers /health and /metrics on its port.
EXPOSE 8080 8081 8082 8083 8084

# The role's port is in the environment `serve` gave the role's process (PID 1 once `serve` has
# replaced itself with it): PORT for the gunicorn roles, LUCID_HEALTH_PORT for the Celery ones.
# urlopen raises on a 503, which fails the check; slim has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; env = dict(item.split('=', 1) for item in open('/proc/1/environ').read().split('\\0') if '=' in item); port = env.get('LUCID_HEALTH_PORT') or env['PORT']; urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4)"]

ENTRYPOINT ["python", "manage.py", "serve"]
CMD ["api"]
