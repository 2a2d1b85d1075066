# Nexus: a slim image that serves the ASGI app with daphne as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# collectstatic needs settings that load; these values exist only for this build step.
RUN DEBUG=false SECRET_KEY=build-only python manage.py collectstatic --no-input --verbosity 0 \
    && useradd --create-home --uid 10001 nexus \
    && chown -R nexus /app
USER nexus

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health').status != 200)"
# Replies a previous run of this process left `streaming` are repaired before serving.
CMD ["sh", "-c", "python manage.py repair_streams && exec daphne -b 0.0.0.0 -p 8000 --proxy-headers nexus.asgi:application"]
