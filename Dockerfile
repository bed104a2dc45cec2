# The worker's image: tierline and its dependencies, run as a user of its own.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# The dependencies first, in a layer of their own: a change to the source does not install them again.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin tierline \
    && mkdir -p /data && chown tierline /data

# A volume mounted at /data starts out owned by the worker's user (the compose file mounts one per worker).
USER tierline
ENV TIERLINE_DATA_DIR=/data
EXPOSE 6066
CMD ["tierline", "worker"]
