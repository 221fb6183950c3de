# tether in a container: the restore job (restore/docker-compose.restore.yml).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /build
COPY pyproject.toml README.md ./
COPY schema ./schema
COPY src ./src
RUN pip install . && rm -rf /build

COPY restore/entrypoint.sh /usr/local/bin/tether-restore
RUN chmod 0755 /usr/local/bin/tether-restore && tether --version

WORKDIR /
ENTRYPOINT ["/usr/local/bin/tether-restore"]
