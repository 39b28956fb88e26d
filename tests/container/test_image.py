"""The image built from the Dockerfile: who it runs as, what it runs, what it holds."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from container.conftest import FIGURES, ROOT, BuiltImage, ImageFiles, Podman

# The container tier: run on its own (`python -m pytest -q -m container tests/container`, as
# .ci/run does after the suite); the first build installs every dependency from PyPI.
pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]

USER = "10001:10001"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_image_runs_as_a_numeric_non_root_user(podman: Podman, image: BuiltImage) -> None:
    assert image.inspect["Config"]["User"] == USER
    done = podman.run("run", "--rm", "--no-healthcheck", "--entrypoint", "/bin/sh", image.id,
                      "-c", "id -u; id -g")
    assert done.stdout.split() == ["10001", "10001"], done.stdout


def test_version_inside_the_image_is_the_package_version(podman: Podman, image: BuiltImage) -> None:
    done = podman.run("run", "--rm", "--no-healthcheck", image.id, "--version")
    assert done.stdout == f"reconciler {image.version}\n"


def test_image_carries_the_oci_labels(image: BuiltImage) -> None:
    labels = image.inspect["Config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == image.version
    assert labels["org.opencontainers.image.revision"] == "container-tier"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.source"].startswith("https://github.com/")


def test_entrypoint_is_reconciler_and_the_state_folder_a_volume(image: BuiltImage) -> None:
    config = image.inspect["Config"]
    assert config["Entrypoint"] == ["reconciler"]
    assert config["Cmd"][0] == "serve"
    assert "/var/lib/reconciler" in config["Volumes"]
    assert "RECONCILER_STATE_DIR=/var/lib/reconciler" in config["Env"]
    assert "/healthz" in " ".join(image.inspect["Healthcheck"]["Test"])


@pytest.fixture
def serving(podman: Podman, image: BuiltImage) -> Iterator[tuple[str, int]]:
    """`reconciler serve` in the image (its default command) with the port published on 127.0.0.1."""
    port = _free_port()
    name = f"reconciler-serve-{port}"
    podman.run("run", "--detach", "--name", name, "--publish", f"127.0.0.1:{port}:8080", image.id)
    try:
        yield name, port
    finally:
        podman.run("rm", "--force", "--time", "5", name, check=False)


def test_serve_in_the_image_answers_healthz_from_the_host(
    podman: Podman, image: BuiltImage, serving: tuple[str, int]
) -> None:
    name, port = serving
    started = time.monotonic()
    deadline = started + 180
    answer: httpx.Response | None = None
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            if answer.status_code == 200:
                break
        except httpx.TransportError:
            pass
        state = podman.run("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        if state != "running":
            logs = podman.run("logs", name, check=False)
            pytest.fail(f"the container is {state}:\n{logs.stdout[-3000:]}\n{logs.stderr[-3000:]}")
        time.sleep(0.5)
    assert answer is not None and answer.status_code == 200, answer
    FIGURES["serve in the image: /healthz answered after"] = f"{time.monotonic() - started:.1f} s"
    # The image's own HEALTHCHECK, run inside the container, passes too.
    assert podman.run("healthcheck", "run", name, check=False).returncode == 0
    # The SQLite store went into the state folder, written as the non-root user.
    listing = podman.run("exec", name, "ls", "-ln", "/var/lib/reconciler").stdout
    owned = [ln for ln in listing.splitlines() if ln.endswith("reconciler.db") and " 10001 10001 " in ln]
    assert owned, listing


def test_image_holds_no_tests_no_git_no_source_tree_and_no_secret(
    image: BuiltImage, image_files: ImageFiles
) -> None:
    names = image_files.names
    assert image_files.with_canary == []
    assert not [n for n in names if ".git" in Path(n).parts], "a .git folder is in the image"
    assert not [n for n in names if Path(n).name == ".env"]
    assert not [n for n in names if n.startswith("src/")], "the build stage's source tree is in the image"
    # The project's tests, wherever they might land (by their path under tests/, which no
    # dependency shares).
    tests = {f"/{p.relative_to(ROOT)}" for p in (ROOT / "tests").rglob("*.py")
             if p.name not in ("__init__.py", "conftest.py")}
    assert not [n for n in names if any(f"/{n}".endswith(t) for t in tests)]
    # The package itself is there, installed from a wheel (not a link to a source tree).
    assert any(n.endswith("site-packages/reconciler/cli/__init__.py") for n in names)
    # Nothing secret in the image's configuration or history either.
    assert image.canary not in str(image.inspect)


def test_final_image_has_no_compiler_pip_or_cache(image_files: ImageFiles) -> None:
    names = image_files.names
    compilers = {"gcc", "cc", "c++", "g++", "clang", "x86_64-linux-gnu-gcc", "aarch64-linux-gnu-gcc"}
    binaries = [n for n in names if n.startswith(("usr/bin/", "usr/local/bin/"))]
    assert not [n for n in binaries if Path(n).name in compilers]
    assert not [n for n in names if "/.cache/" in f"/{n}" or n.startswith("root/.cache")]
    assert not [n for n in names if n.startswith("opt/reconciler/bin/pip")]
    assert not [n for n in names if n.startswith("var/lib/apt/lists/") and "Packages" in n]
