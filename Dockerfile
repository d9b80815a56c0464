# A slim image that runs `segments serve` against DATABASE_URL (required: the embedded
# PostgreSQL is for local use, not for containers).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY schema ./schema
COPY db ./db
COPY rules ./rules
COPY sql ./sql
COPY bench ./bench
RUN pip install . && useradd --system --uid 10001 segments
USER segments

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=2).status == 200 else 1)"
CMD ["segments", "serve", "--host", "0.0.0.0"]
