"""The container tier: the project's Dockerfile built and run for real, with podman.

No Docker engine runs on the project's machines and no image registry is reachable, so
`.ci/container-tier` sets podman up the way it works here (vfs storage, runc, no default
ulimits) and makes a Debian base image with debootstrap that stands in for the official
slim Python image (the Dockerfile's BASE_IMAGE argument). Everything lives in a cache folder
outside the checkout, so the base image and podman's layer cache survive between runs.

The image is built once per session from a copy of the checkout in which a `.env`, a
`.git` folder and a package-level `.env` hold a canary secret: the tests then show that the
build context and the image keep them out. The tier is skipped, saying why, only where
podman cannot be installed (or with RECONCILER_CONTAINER_TESTS=0, for a CI job that runs it
elsewhere).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIER = ROOT / ".ci" / "container-tier"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
TAG = "localhost/reconciler:container-tier"
# What a developer's checkout may hold that the copy for the build context need not.
NOT_COPIED = shutil.ignore_patterns(".git", "venv", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache",
                                    "__pycache__", "sandbox", "node_modules", "dist", "build")

FIGURES: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Podman:
    """podman with the tier's configuration (its environment) and the base image's name."""

    env: dict[str, str]
    base_image: str

    def run(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {done.returncode}:\n{done.stderr[-4000:]}")
        return done


@dataclass(frozen=True, slots=True)
class BuiltImage:
    id: str
    version: str
    canary: str
    inspect: dict  # type: ignore[type-arg]  # podman's JSON, read by key in the tests


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.write_sep("-", "container tier")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def podman() -> Podman:
    if os.environ.get("RECONCILER_CONTAINER_TESTS") == "0":
        pytest.skip("RECONCILER_CONTAINER_TESTS=0: the container tier runs elsewhere (CI's container job)")
    started = time.monotonic()
    done = subprocess.run(["bash", str(TIER), "prepare", "--no-install"], capture_output=True, text=True,
                          timeout=900, check=False)
    if done.returncode == 3:
        pytest.skip(f"podman is not available: {done.stderr.strip()}")
    if done.returncode != 0:
        pytest.fail(f".ci/container-tier prepare failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    FIGURES["prepare (podman config, base image)"] = f"{time.monotonic() - started:.1f} s"
    listed = subprocess.run(["bash", str(TIER), "env"], capture_output=True, text=True, check=True)
    extra = dict(line.split("=", 1) for line in listed.stdout.splitlines() if "=" in line)
    return Podman(env={**os.environ, **extra}, base_image=extra["RECONCILER_CI_BASE_IMAGE"])


def _build_context(into: Path, canary: str) -> Path:
    """A copy of the checkout with secrets and a .git folder planted where a real one has them."""
    context = into / "context"
    shutil.copytree(ROOT, context, ignore=NOT_COPIED, symlinks=True,
                    ignore_dangling_symlinks=True)
    (context / ".env").write_text(f"RECONCILER_API_ADMIN_TOKEN={canary}\n")
    (context / "reconciler" / ".env").write_text(f"POSTGRES_PASSWORD={canary}\n")
    git = context / ".git"
    git.mkdir()
    (git / "config").write_text(f'[credential]\n\thelper = store\n[http]\n\textraheader = "token {canary}"\n')
    return context


@pytest.fixture(scope="session")
def image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltImage]:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    canary = f"canary-{uuid.uuid4().hex}"
    workdir = tmp_path_factory.mktemp("image")
    context = _build_context(workdir, canary)
    iidfile = workdir / "iid"
    args = ["build", "--format", "docker", "--network", "host", "--layers",
            "--build-arg", f"BASE_IMAGE={podman.base_image}",
            "--build-arg", f"VERSION={version}", "--build-arg", "REVISION=container-tier",
            "--file", str(context / "Dockerfile")]
    if CA_BUNDLE.is_file():
        # pip in the build talks to PyPI through this machine's TLS set-up.
        args += ["--volume", f"{CA_BUNDLE}:{CA_BUNDLE}:ro", "--build-arg", f"PIP_CERT={CA_BUNDLE}"]
    started = time.monotonic()
    # The build stage gets a tag of its own, so that pruning (below) keeps its layers, above
    # all the dependencies' one, as the next run's cache: untagged, it would count as dangling.
    podman.run(*args, "--target", "build", "--tag", f"{TAG}-build", str(context), timeout=1500)
    podman.run(*args, "--iidfile", str(iidfile), "--tag", TAG, str(context), timeout=1500)
    FIGURES["image build"] = f"{time.monotonic() - started:.1f} s"
    image_id = iidfile.read_text().strip()
    inspect = json.loads(podman.run("image", "inspect", image_id).stdout)[0]
    FIGURES["image size"] = f"{inspect['Size'] / 1e6:.0f} MB (podman image inspect .Size)"
    yield BuiltImage(id=image_id, version=version, canary=canary, inspect=inspect)
    # Earlier builds' layers only take space (vfs keeps a full copy per layer); the two tagged
    # images and their parents stay as the next run's layer cache.
    podman.run("image", "prune", "--force", check=False)


@dataclass(frozen=True, slots=True)
class ImageFiles:
    """What the image's filesystem holds: every path, and the files holding the canary secret."""

    names: list[str]
    with_canary: list[str]


@pytest.fixture(scope="session")
def image_files(podman: Podman, image: BuiltImage, tmp_path_factory: pytest.TempPathFactory) -> ImageFiles:
    """Read once from `podman export` of a created, never started, container."""
    tar = tmp_path_factory.mktemp("export") / "rootfs.tar"
    container = podman.run("create", "--no-healthcheck", image.id).stdout.strip()
    try:
        podman.run("export", "--output", str(tar), container)
    finally:
        podman.run("rm", "--force", container, check=False)
    canary = image.canary.encode()
    names: list[str] = []
    with_canary: list[str] = []
    with tarfile.open(tar) as archive:
        for member in archive:
            names.append(member.name.removeprefix("./"))
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is not None and canary in handle.read():
                with_canary.append(member.name)
    tar.unlink()
    return ImageFiles(names=names, with_canary=with_canary)
