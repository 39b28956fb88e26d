# syntax=docker/dockerfile:1
#
# The reconciler's image: `reconciler` as the entrypoint, the daemon (`serve`) by default.
#
#   docker build -t reconciler:dev .
#   docker run --rm -p 8080:8080 -v "$PWD/specs:/specs:ro" reconciler:dev
#
# Two stages on the same base: the build stage installs the package (a wheel built from
# this folder, not an editable install) into a virtual environment at /opt/reconciler; the
# final stage copies only that environment, so no pip cache, compiler, build tool or source
# tree reaches the image. BASE_IMAGE must provide python3 with the venv module at the same
# path in both stages (the venv's interpreter is a link to it); the official slim image
# does, as does a Debian base with python3 and python3-venv (the project's tests use one).
ARG BASE_IMAGE=python:3.12-slim-bookworm

# The dependency list alone, out of pyproject.toml: the build stage copies this file, so its
# dependencies layer is reused by every build whose dependencies did not change (edits to
# the version, the dev extras or tool settings included).
FROM ${BASE_IMAGE} AS requirements
COPY pyproject.toml /src/
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /requirements.txt

FROM ${BASE_IMAGE} AS build
# Behind a TLS-inspecting proxy: the path of a CA bundle that pip should trust, made
# available to the build (e.g. podman build --volume /etc/ssl/certs/ca-certificates.crt:...).
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/reconciler
COPY --from=requirements /requirements.txt /tmp/requirements.txt
RUN /opt/reconciler/bin/pip install --requirement /tmp/requirements.txt
WORKDIR /src
COPY pyproject.toml ./
COPY README.md ./
COPY reconciler ./reconciler
RUN /opt/reconciler/bin/pip install --no-deps . \
 && /opt/reconciler/bin/pip uninstall --yes pip

FROM ${BASE_IMAGE}
ARG VERSION=0.0.0+unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="reconciler" \
      org.opencontainers.image.description="A declarative, GitOps-style reconciler for databases and config files" \
      org.opencontainers.image.source="https://github.com/reconciler-dev/reconciler" \
      org.opencontainers.image.url="https://github.com/reconciler-dev/reconciler" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# git: `serve --git` and `plan --base/--head` run it (through GitPython); ca-certificates for
# HTTPS remotes. Installed only when the base lacks them; the apt lists are not kept.
RUN if ! command -v git >/dev/null || ! dpkg-query --show ca-certificates >/dev/null 2>&1; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install --yes --no-install-recommends git ca-certificates \
      && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb; \
    fi \
 && mkdir -p /var/lib/reconciler /specs \
 && chown 10001:10001 /var/lib/reconciler
COPY --from=build /opt/reconciler /opt/reconciler
# A numeric user (Kubernetes' runAsNonRoot can only verify a number); the chart and the
# compose file run as the same 10001:10001. HOME points at the state folder so that git and
# anything else that wants a home directory write there, not to /.
USER 10001:10001
ENV PATH=/opt/reconciler/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/reconciler \
    RECONCILER_STATE_DIR=/var/lib/reconciler
WORKDIR /var/lib/reconciler
# The SQLite store (when RECONCILER_DATABASE_URL is unset), locks and caches.
VOLUME ["/var/lib/reconciler"]
EXPOSE 8080
# /healthz answers without a token. The check runs inside the container, so it uses the
# default port; with `--port N`, override the healthcheck too.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["reconciler"]
CMD ["serve", "--specs", "/specs", "--host", "0.0.0.0", "--port", "8080"]
