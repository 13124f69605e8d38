# The operator image: the controller (`ensemble-operator run`), each ensemble's gRPC
# service (`ensemble-operator service`) and the member status sidecar.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
# Not "operator": Debian already has a group of that name (gid 37), and useradd refuses
# to create a user whose own group would clash with it.
RUN groupadd --gid 65532 ensemble \
    && useradd --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin ensemble
WORKDIR /app

# Dependencies first: this layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; d = tomllib.load(open('pyproject.toml', 'rb')); print('\n'.join(d['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt

COPY api ./api
COPY controller ./controller
RUN pip install --no-deps .

USER 65532:65532
ENTRYPOINT ["ensemble-operator"]
CMD ["run"]
