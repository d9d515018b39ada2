# The churnwatch worker image. Build context: this repository.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY stream ./stream
COPY agents ./agents
RUN pip install --upgrade pip && pip install .
RUN useradd --create-home churnwatch && mkdir -p /data && chown churnwatch /data
USER churnwatch
ENV CHURNWATCH_DATA_DIR=/data CHURNWATCH_STORE=rocksdb
ENTRYPOINT ["churnwatch"]
CMD ["worker"]
