# Nexus: one ASGI server process (daphne) per container, as a non-root user. Run several
# containers for more capacity: docker-compose.yml runs three behind a load balancer.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOG_FORMAT=json

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# collectstatic needs settings that load; these values exist only for this build step.
# WhiteNoise then serves the hashed, compressed files from the image.
RUN DEBUG=false SECRET_KEY=build-only python manage.py collectstatic --no-input --verbosity 0 \
    && useradd --create-home --uid 10001 nexus \
    && mkdir -p /app/media \
    && chown -R nexus /app
USER nexus

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=4s --start-period=20s --retries=3 CMD ["python", "deploy/healthcheck.py"]
# Replies a dead process left `streaming` are repaired first (turns other replicas run are
# left alone). No --proxy-headers: daphne would take the leftmost X-Forwarded-For value, which
# the client wrote; Nexus derives the client's address itself (TRUSTED_PROXY_COUNT). Nexus logs
# every request itself, as JSON with its request id, so daphne's own access log is off.
CMD ["sh", "-c", "python manage.py repair_streams && exec daphne -b 0.0.0.0 -p 8000 --access-log /dev/null nexus.asgi:application"]
