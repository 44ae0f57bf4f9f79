# Image of the gem_dagster code location. docker-compose.yml runs it three times: as the gRPC
# code server that executes runs, as the webserver and as the daemon.
FROM python:3.11-slim

# lightgbm's wheel links against the GNU OpenMP runtime, which the slim image lacks.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# The embedding model ships inside a Python package, so nothing is fetched from a model hub.
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    DAGSTER_HOME=/opt/dagster/home \
    GEM_STORAGE_ROOT=/var/lib/gem/storage

# Which torch 2.13.0 build the image gets depends on the index pip installs it from:
# - TORCH_INDEX_URL empty (the default): pip's configured index. On PyPI, torch 2.13.0 for
#   Linux x86_64 is a CUDA 13.0 build that pulls the CUDA and cuDNN wheels (several GB). It
#   runs on the CPU as well, and on NVIDIA GPUs whose driver supports CUDA 13.0.
# - TORCH_INDEX_URL=<PyTorch's CPU wheel index>: the 2.13.0+cpu build, for a much smaller image
#   on hosts without a GPU.
# - TORCH_INDEX_URL=<PyTorch's wheel index for an older CUDA>: for GPU hosts whose driver is
#   too old for CUDA 13.0. PyTorch's install page lists the index URL of each build.
ARG TORCH_INDEX_URL=""
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        pip install --index-url "$TORCH_INDEX_URL" "torch==2.13.0"; \
    fi

WORKDIR /opt/gem_dagster
COPY pyproject.toml README.md ./
COPY gem_dagster ./gem_dagster
COPY data/sample ./data/sample

# torch is named in the same pip command as the project, as in the Makefile. pip then keeps
# the build installed above, because a local version such as 2.13.0+cpu satisfies ==2.13.0,
# and sentence-transformers' own torch requirement cannot pull a different build.
RUN pip install "torch==2.13.0" -e .

# An unprivileged user. Named volumes copy the ownership of the image folder they are first
# mounted on, so the storage folders created here stay writable for this user.
RUN useradd --system --uid 10001 --create-home --home-dir /home/gem gem \
    && mkdir -p /opt/dagster/home/storage /var/lib/gem/storage /var/lib/gem/corpus \
    && chown -R gem:gem /opt/dagster /var/lib/gem
USER gem

EXPOSE 3000 4000
