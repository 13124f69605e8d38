# The operator image: the controller (`ensemble-operator run`), each ensemble's gRPC
# service (`ensemble-operator service`) and the member status sidecar.
# Python 3.12 on trixie: the sidecar imports the Flux bindings of the MiniCluster's Flux
# view, and the Flux Operator's default view (flux-view-ubuntu:tag-noble) builds them for
# Ubuntu noble's Python 3.12 against its glibc 2.39 (bookworm has 2.36, trixie 2.41).
FROM python:3.12-slim-trixie

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
