# The contact-centre server: HTTP + socket.io on 8080, FastAGI on 4573.
#
#   docker build -t contactcentre .
#   docker run --rm -p 8080:8080 contactcentre demo      # server + PBX simulator + SQLite
#
# Settings come from CC_* environment variables (see docs/DEPLOYMENT.md);
# `serve` runs the database migrations itself at start-up.

# ---------------------------------------------------------------------------
# Stage 1: browser libraries. Node and npm exist only in this stage; the image
# keeps nothing of it but web/node_modules, which the server serves as files.
FROM node:22-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
# --omit=dev: only what the browser loads. --ignore-scripts: browser libraries
# need no install scripts, and none of a dependency's code runs at build time.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---------------------------------------------------------------------------
# Stage 2: the Python package and its dependencies, in a virtualenv that the
# final stage copies whole (no pip cache, no build leftovers in the image).
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# pyproject.toml names README.md as the package's readme, so it is needed to build.
COPY pyproject.toml README.md ./
COPY contactcentre/ ./contactcentre/
RUN /opt/venv/bin/pip install .

# ---------------------------------------------------------------------------
# Stage 3: what runs.
FROM python:3.11-slim-bookworm

# The package finds web/, config/, migrations/ and its own data files
# (routing/agent_states.yaml) next to its source directory, as in a checkout.
# So the image keeps the source tree in /app and imports the package from
# there: PYTHONPATH puts /app ahead of the virtualenv's site-packages. The
# virtualenv supplies the dependencies and the `contactcentre` command.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CC_SERVER_HOST=0.0.0.0 \
    CC_SERVER_PORT=8080 \
    CC_AGI_HOST=0.0.0.0 \
    CC_AGI_PORT=4573

# An unprivileged user with a fixed id (so volume ownership is predictable).
RUN groupadd --system --gid 10001 contactcentre \
 && useradd --system --uid 10001 --gid contactcentre \
      --home-dir /var/lib/contactcentre --no-create-home \
      --shell /usr/sbin/nologin contactcentre \
 && install -d -o contactcentre -g contactcentre -m 0750 /var/lib/contactcentre

COPY --from=build /opt/venv /opt/venv

# Application files, owned by root and read-only for the server's user.
WORKDIR /app
COPY contactcentre/ ./contactcentre/
COPY config/ ./config/
COPY migrations/ ./migrations/
COPY web/ ./web/
COPY --from=web /src/web/node_modules ./web/node_modules
# Byte-compile now: the user cannot write __pycache__ under /app at run time.
RUN python -m compileall -q /app/contactcentre /app/migrations

USER 10001:10001
# The working directory is the one place the server may write: a relative
# SQLite path (the default database URL, or the demo's) lands here. Mount a
# volume on it to keep such a database.
WORKDIR /var/lib/contactcentre

# 8080: HTTP and socket.io (browser consoles, wallboards, REST API)
# 4573: FastAGI; Asterisk connects here for every inbound call
EXPOSE 8080 4573

# No curl in the slim image: Python fetches /health (503 while the AMI link is down).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('CC_SERVER_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["contactcentre"]
CMD ["serve", "--config", "/app/config/contactcentre.toml"]
