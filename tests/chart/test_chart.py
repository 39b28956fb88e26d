"""The Helm chart `charts/reconciler`: what it renders with default and HA values.

Rendering needs Helm: the `helm` binary when it is on PATH, else the `helm-python-sdk`
package (import name `helm_python`: Helm's Go SDK in a bundled shared library, no binary).
Without either, the rendering tests are skipped with that reason; the tests that need no
renderer (Chart.yaml, values.yaml, the static RBAC text, the CRDs in crds/) always run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from reconciler.artifacts import render_crds

REPO = Path(__file__).parents[2]
CHART = REPO / "charts" / "reconciler"
EXAMPLE_VALUES = REPO / "examples" / "kubernetes" / "helm" / "values.yaml"
NAMESPACE = "ops"
RELEASE = "rel"

KINDS = ["syncjobs", "aedsourcebindings", "agentconfigs", "rbacmappings"]
STATUSES = [f"{k}/status" for k in KINDS]
# (apiGroup, resource) -> verbs, exactly; what the operator needs where it watches.
WATCHED_RULES = {
    **{("reconciler.dev", k): {"get", "list", "watch", "patch"} for k in KINDS},
    **{("reconciler.dev", s): {"patch", "update"} for s in STATUSES},
    ("", "secrets"): {"get"},  # one Secret at a time (SecretReader), never listed
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
}
PEERING_VERBS = {"get", "list", "watch", "patch"}
DISCOVERY_RULES = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"},
    ("", "namespaces"): {"get", "list", "watch"},
}
HA_VALUES: dict[str, Any] = {
    "replicaCount": 2,
    "watchNamespaces": ["a", "b"],
    "metrics": {"serviceMonitor": {"enabled": True}},
    "store": {"existingSecret": "reconciler-store"},
}


def _yaml() -> YAML:
    return YAML(typ="safe", pure=True)


def _documents(text: str) -> list[dict[str, Any]]:
    return [d for d in _yaml().load_all(text) if d]


# --- renderers ------------------------------------------------------------------------------


class RenderError(Exception):
    """Helm refused the values (a `fail` in a template, or a template error)."""


@dataclass(frozen=True)
class Renderer:
    name: str
    template: Callable[[dict[str, Any]], list[dict[str, Any]]]
    crds: Callable[[], list[dict[str, Any]]]
    lint: Callable[[dict[str, Any]], list[str]]


def _binary_renderer(helm: str) -> Renderer:
    def run(*args: str, values: dict[str, Any] | None = None) -> str:
        with tempfile.TemporaryDirectory() as folder:
            extra: list[str] = []
            if values is not None:
                path = Path(folder) / "values.json"
                path.write_text(json.dumps(values), encoding="utf-8")  # JSON is YAML
                extra = ["-f", str(path)]
            done = subprocess.run([helm, *args, *extra], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RenderError(done.stderr + done.stdout)
        return done.stdout

    def template(values: dict[str, Any]) -> list[dict[str, Any]]:
        return _documents(run("template", RELEASE, str(CHART), "--namespace", NAMESPACE, values=values))

    def crds() -> list[dict[str, Any]]:
        text = run("template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--include-crds")
        return [d for d in _documents(text) if d.get("kind") == "CustomResourceDefinition"
                and d["spec"]["group"] == "reconciler.dev"]

    def lint(values: dict[str, Any]) -> list[str]:
        try:
            run("lint", str(CHART), "--strict", "--namespace", NAMESPACE, values=values)
        except RenderError as exc:
            return [str(exc)]
        return []

    version = subprocess.run([helm, "version", "--short"], capture_output=True, text=True, check=False)
    return Renderer(f"helm binary {version.stdout.strip()}", template, crds, lint)


def _sdk_renderer() -> Renderer | None:
    try:
        import helm_python  # helm-python-sdk
    except ImportError:
        return None

    def template(values: dict[str, Any]) -> list[dict[str, Any]]:
        with helm_python.Chart.load(CHART) as chart:
            try:
                rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE)
            except helm_python.HelmError as exc:
                raise RenderError(str(exc)) from None
        return [d for path in sorted(rendered) if path.endswith((".yaml", ".yml"))
                for d in _documents(rendered[path])]

    def crds() -> list[dict[str, Any]]:
        with helm_python.Chart.load(CHART) as chart:
            return [d for crd in chart.crds for d in _documents(crd["data"])]

    def lint(values: dict[str, Any]) -> list[str]:
        report = helm_python.lint(CHART, values, strict=True, namespace=NAMESPACE)
        return [*report["errors"], *(f"{m['path']}: {m['error']}" for m in report["messages"]
                                     if m["severity"] >= 2)]

    return Renderer(f"helm-python-sdk (Helm {helm_python.helm_sdk_version()})", template, crds, lint)


@pytest.fixture(scope="session")
def helm() -> Renderer:
    binary = shutil.which("helm")
    renderer = _binary_renderer(binary) if binary else _sdk_renderer()
    if renderer is None:
        pytest.skip("no Helm renderer: neither the `helm` binary on PATH nor the helm-python-sdk "
                    "package (`pip install helm-python-sdk`) is available")
    return renderer


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def rules_of(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs, failing on a rule repeated for the same pair."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert (group, resource) not in out, f"{role['metadata']['name']}: {resource} twice"
                out[(group, resource)] = set(rule["verbs"])
    return out


def assert_no_wildcards(docs: list[dict[str, Any]]) -> None:
    for role in of_kind(docs, "ClusterRole") + of_kind(docs, "Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), f"{role['metadata']['name']}: * in {field}"


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c["env"]}


# --- without a renderer ---------------------------------------------------------------------


def test_chart_metadata() -> None:
    chart = _yaml().load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert (chart["apiVersion"], chart["name"], chart["version"], chart["appVersion"]) == \
        ("v2", "reconciler", "0.1.0", "0.1.0")


def test_crds_folder_holds_exactly_the_generated_crds() -> None:
    committed = {p.name: p.read_text(encoding="utf-8") for p in (CHART / "crds").iterdir()}
    assert committed == render_crds(), "regenerate with `reconciler crds`"


def test_default_values_are_one_standalone_hardened_replica() -> None:
    values = _yaml().load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert values["replicaCount"] == 1
    assert values["watchNamespaces"] == []
    assert values["peering"]["enabled"] is None  # on only with more than one replica
    assert values["metrics"]["serviceMonitor"]["enabled"] is False
    assert values["api"]["port"] == values["service"]["port"] == 8080
    assert values["stateDir"]["path"] == "/var/lib/reconciler"
    security = values["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == 10001
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert set(values["resources"]) == {"requests", "limits"}


def test_rbac_templates_name_no_wildcards() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in (CHART / "templates").glob("*"))
    lists = re.findall(r"(?:apiGroups|resources|verbs|resourceNames):\s*\[([^\]]*)\]", text)
    assert lists, "no RBAC lists found"
    assert all("*" not in found for found in lists)
    verbs = {v.strip() for found in re.findall(r"verbs:\s*\[([^\]]*)\]", text) for v in found.split(",")}
    assert verbs == {"get", "list", "watch", "patch", "update", "create"}


def test_every_value_a_template_reads_is_declared_in_values_yaml() -> None:
    values = _yaml().load((CHART / "values.yaml").read_text(encoding="utf-8"))
    text = "\n".join(p.read_text(encoding="utf-8") for p in (CHART / "templates").glob("*"))
    missing = []
    for path in sorted(set(re.findall(r"\.Values\.([A-Za-z0-9_.]+)", text))):
        node: Any = values
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                missing.append(path)
                break
            node = node[part]
    assert missing == []


# --- rendered: default values ---------------------------------------------------------------


def test_default_render_is_one_standalone_replica_watching_every_namespace(helm: Renderer) -> None:
    docs = helm.template({})
    assert {d["kind"] for d in docs} == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                                         "Service", "Deployment"}
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    c = container(docs)
    assert c["command"] == ["reconciler"]
    assert c["args"] == ["operator", "--port", "8080"]  # every namespace; priority 0: standalone
    assert c["image"] == "ghcr.io/reconciler-dev/reconciler:0.1.0"  # what release.yml publishes


def test_probes_port_and_service_use_the_http_api(helm: Renderer) -> None:
    docs = helm.template({})
    c = container(docs)
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    service = one(docs, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_container_is_hardened_and_writes_only_to_empty_dirs(helm: Renderer) -> None:
    docs = helm.template({})
    c = container(docs)
    security = c["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 10001
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert mounts == {"/tmp": "tmp", "/var/lib/reconciler": "state"}
    assert all("emptyDir" in volumes[name] for name in mounts.values())
    assert env_of(c)["RECONCILER_STATE_DIR"]["value"] == "/var/lib/reconciler"
    assert "RECONCILER_DATABASE_URL" not in env_of(c)
    assert set(c["resources"]) == {"requests", "limits"}


def test_default_rbac_is_one_cluster_role_with_exactly_the_needed_verbs(helm: Renderer) -> None:
    docs = helm.template({})
    assert_no_wildcards(docs)
    role = one(docs, "ClusterRole")
    assert rules_of(role) == {**WATCHED_RULES, **DISCOVERY_RULES,
                              ("kopf.dev", "clusterkopfpeerings"): PEERING_VERBS}
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    account = one(docs, "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": NAMESPACE}]
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == \
        account["metadata"]["name"]


def test_crds_shipped_with_the_chart_are_the_generated_ones(helm: Renderer) -> None:
    expected = sorted((_yaml().load(t) for t in render_crds().values()), key=lambda d: d["metadata"]["name"])
    assert sorted(helm.crds(), key=lambda d: d["metadata"]["name"]) == expected


def test_lint_passes(helm: Renderer) -> None:
    assert helm.lint({}) == []
    assert helm.lint(HA_VALUES) == []


# --- rendered: two replicas, two watched namespaces, ServiceMonitor ----------------------------


def test_ha_render_runs_two_peered_replicas_with_a_pdb(helm: Renderer) -> None:
    docs = helm.template(HA_VALUES)
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    c = container(docs)
    assert c["command"][:2] == ["/bin/sh", "-ec"] and c["command"][3] == "reconciler"
    assert "--priority" in c["command"][2]
    assert c["args"] == ["operator", "--namespace", "a", "--namespace", "b", "--port", "8080"]
    assert env_of(c)["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env_of(c)["RECONCILER_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == \
        {"name": "reconciler-store", "key": "database-url"}
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= \
        deployment["spec"]["template"]["metadata"]["labels"].items()


def test_ha_rbac_reads_secrets_only_in_the_watched_namespaces(helm: Renderer) -> None:
    docs = helm.template(HA_VALUES)
    assert_no_wildcards(docs)
    roles = {r["metadata"]["namespace"]: r for r in of_kind(docs, "Role")}
    assert set(roles) == {"a", "b"}
    for role in roles.values():
        assert rules_of(role) == {**WATCHED_RULES, ("kopf.dev", "kopfpeerings"): PEERING_VERBS}
    cluster_role = one(docs, "ClusterRole")
    assert rules_of(cluster_role) == DISCOVERY_RULES  # no Secrets, no custom resources cluster-wide
    bindings = {b["metadata"]["namespace"]: b for b in of_kind(docs, "RoleBinding")}
    assert set(bindings) == {"a", "b"}
    for namespace, binding in bindings.items():
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                      "name": roles[namespace]["metadata"]["name"]}
        assert binding["subjects"][0]["namespace"] == NAMESPACE


def test_ha_render_installs_kopf_peering_and_a_default_peering_per_namespace(helm: Renderer) -> None:
    docs = helm.template(HA_VALUES)
    crds = {d["spec"]["names"]["kind"]: d for d in of_kind(docs, "CustomResourceDefinition")}
    assert set(crds) == {"KopfPeering", "ClusterKopfPeering"}
    assert {d["spec"]["group"] for d in crds.values()} == {"kopf.dev"}
    assert crds["KopfPeering"]["spec"]["scope"] == "Namespaced"
    assert crds["ClusterKopfPeering"]["spec"]["scope"] == "Cluster"
    peerings = of_kind(docs, "KopfPeering")
    assert sorted((p["metadata"]["namespace"], p["metadata"]["name"]) for p in peerings) == \
        [("a", "default"), ("b", "default")]
    assert all(p["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade" for p in peerings)


def test_ha_render_with_every_namespace_uses_the_cluster_peering(helm: Renderer) -> None:
    docs = helm.template({**HA_VALUES, "watchNamespaces": []})
    assert [p["metadata"]["name"] for p in of_kind(docs, "ClusterKopfPeering")] == ["default"]
    assert of_kind(docs, "KopfPeering") == []
    assert ("kopf.dev", "clusterkopfpeerings") in rules_of(one(docs, "ClusterRole"))


def test_service_monitor_scrapes_metrics_on_the_http_port(helm: Renderer) -> None:
    monitor = one(helm.template(HA_VALUES), "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_priority_wrapper_gives_each_pod_its_own_priority(helm: Renderer, tmp_path: Path) -> None:
    if not (Path("/bin/sh").exists() and shutil.which("cksum")):
        pytest.skip("needs /bin/sh and cksum")
    c = container(helm.template(HA_VALUES))
    fake = tmp_path / "reconciler"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n', encoding="utf-8")
    fake.chmod(0o755)
    priorities = []
    for pod in ("rel-reconciler-5d8f9c7b6-k2x9p", "rel-reconciler-5d8f9c7b6-q7m4z"):
        env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "POD_NAME": pod}
        out = subprocess.run([*c["command"], *c["args"]], env=env, capture_output=True, text=True,
                             check=True).stdout.splitlines()
        assert out[:-2] == c["args"] and out[-2] == "--priority"
        priorities.append(int(out[-1]))
    assert len(set(priorities)) == 2 and all(0 < p < 2**31 for p in priorities)


def operator_options(c: dict[str, Any], priority: int = 123) -> dict[str, Any]:
    """The options `reconciler operator` parses from the container's command line.

    The priority wrapper appends `--priority N`; `priority` stands in for the N it computes.
    """
    from typer.main import get_command

    from reconciler.cli import app

    command = c["command"]
    argv = list(c["args"]) + (["--priority", str(priority)] if command[0] == "/bin/sh" else [])
    assert argv[0] == "operator"
    assert (command[-1] if command[0] == "/bin/sh" else command[0]) == "reconciler"
    return get_command(app).commands["operator"].make_context("operator", argv[1:]).params


@pytest.mark.parametrize(("values", "priority"), [
    ({}, 0),  # standalone
    (HA_VALUES, 123),  # the wrapper's
    ({"api": {"adminTokenSecret": {"name": "t"}, "viewerTokenSecret": {"name": "t"}}}, 0),
    ({"peering": {"enabled": True}, "operator": {"priority": 7, "tick": "5s"}}, 7),
], ids=["default", "ha", "tokens", "fixed-priority-and-tick"])
def test_the_operator_command_accepts_the_rendered_arguments(helm: Renderer, values: dict[str, Any],
                                                             priority: int) -> None:
    c = container(helm.template(values))
    params = operator_options(c, priority=123)
    assert params["port"] == 8080
    assert list(params["namespace"] or []) == values.get("watchNamespaces", [])
    assert params["priority"] == priority
    if "tick" in values.get("operator", {}):
        assert params["tick"] == values["operator"]["tick"]
    env = env_of(c)
    for name in [*params["admin_token_env"], *params["viewer_token_env"]]:
        assert "secretKeyRef" in env[name]["valueFrom"]


# --- rendered: other values -----------------------------------------------------------------


def test_store_url_and_api_tokens_come_from_secrets(helm: Renderer) -> None:
    docs = helm.template({"store": {"url": "postgresql+psycopg://u:p@db/reconciler"},
                          "api": {"adminTokenSecret": {"name": "tokens", "key": "admin"},
                                  "viewerTokenSecret": {"name": "tokens", "key": "viewer"}},
                          "redis": {"url": "redis://redis:6379/0"}, "mqtt": {"host": "mqtt"}})
    secret = one(docs, "Secret")
    assert secret["stringData"] == {"database-url": "postgresql+psycopg://u:p@db/reconciler"}
    c = container(docs)
    env = env_of(c)
    assert env["RECONCILER_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == \
        {"name": secret["metadata"]["name"], "key": "database-url"}
    for role in ("admin", "viewer"):
        assert env[f"RECONCILER_API_{role.upper()}_TOKEN"]["valueFrom"]["secretKeyRef"] == \
            {"name": "tokens", "key": role}
    assert c["args"][-4:] == ["--admin-token-env", "RECONCILER_API_ADMIN_TOKEN",
                              "--viewer-token-env", "RECONCILER_API_VIEWER_TOKEN"]
    assert env["RECONCILER_REDIS_URL"]["value"] == "redis://redis:6379/0"
    assert (env["RECONCILER_MQTT_HOST"]["value"], env["RECONCILER_MQTT_PORT"]["value"]) == ("mqtt", "1883")


@pytest.mark.parametrize(("values", "message"), [
    ({"replicaCount": 2}, "shared store"),
    ({"replicaCount": 2, "store": {"existingSecret": "s"}, "peering": {"enabled": False}}, "peering"),
    ({"replicaCount": 2, "store": {"existingSecret": "s"}, "operator": {"priority": 5}},
     "same kopf priority"),
    ({"peering": {"enabled": True}, "operator": {"priority": 0}}, "at least 1"),
    ({"store": {"url": "sqlite://", "existingSecret": "s"}}, "not both"),
    ({"rbac": {"extraRules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]}},
     "least privilege"),
], ids=["ha-without-store", "ha-without-peering", "ha-with-fixed-priority", "priority-zero",
        "two-stores", "wildcard-rule"])
def test_values_that_cannot_work_are_refused(helm: Renderer, values: dict[str, Any], message: str) -> None:
    with pytest.raises(RenderError, match=message):
        helm.template(values)


def test_example_values_render_two_replicas_watching_the_reconciler_namespace(helm: Renderer) -> None:
    values = _yaml().load(EXAMPLE_VALUES.read_text(encoding="utf-8"))
    docs = helm.template(values)
    assert one(docs, "Deployment")["spec"]["replicas"] == 2
    assert [r["metadata"]["namespace"] for r in of_kind(docs, "Role")] == ["reconciler"]
    assert [p["metadata"]["namespace"] for p in of_kind(docs, "KopfPeering")] == ["reconciler"]
    assert helm.lint(values) == []


def test_rbac_kinds_are_the_kind_registry_plus_extra_kinds(helm: Renderer) -> None:
    # The chart lists no kind by hand: the built-ins come from crds/ (generated from
    # reconciler.kinds), plugin kinds from values.extraKinds.
    from reconciler.kinds import BUILTINS

    expected = {info.plural for info in BUILTINS}
    rules = rules_of(one(helm.template({}), "ClusterRole"))
    assert {r for g, r in rules if g == "reconciler.dev" and "/" not in r} == expected
    with_plugin = rules_of(one(helm.template({"extraKinds": ["keyvaluestores"]}), "ClusterRole"))
    assert ("reconciler.dev", "keyvaluestores") in with_plugin
    assert ("reconciler.dev", "keyvaluestores/status") in with_plugin


# --- issue 17, item 7: alerting rules and the dashboard -------------------------------------

RULES_FILE = REPO / "deploy" / "prometheus" / "reconciler-rules.yaml"
MONITORING: dict[str, Any] = {"metrics": {
    "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus"}},
    "grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "Reconciler"}}}}


def test_the_chart_ships_the_same_rules_as_the_plain_rules_file() -> None:
    assert (CHART / "files" / "prometheus-rules.yaml").read_bytes() == RULES_FILE.read_bytes(), \
        "copy deploy/prometheus/reconciler-rules.yaml to charts/reconciler/files/prometheus-rules.yaml"


def test_prometheus_rule_and_dashboard_are_off_by_default(helm: Renderer) -> None:
    docs = helm.template({})
    assert of_kind(docs, "PrometheusRule") == []
    assert [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")] == []


def test_prometheus_rule_renders_every_alert_with_a_severity(helm: Renderer) -> None:
    rule = one(helm.template(MONITORING), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == NAMESPACE and rule["metadata"]["labels"]["release"] == \
        "kube-prometheus"
    assert rule["spec"] == {"groups": _yaml().load(RULES_FILE.read_text(encoding="utf-8"))["groups"]}
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert {a: r["labels"]["severity"] for a, r in alerts.items()} == {
        "ReconcilerConsecutiveFailures": "critical", "ReconcilerDataCorruption": "critical",
        "ReconcilerRunOver1h": "critical", "ReconcilerRunOver45m": "warning",
        "ReconcilerRowsRejected": "warning", "ReconcilerRecoveredAfterRetries": "warning",
        "ReconcilerNoRecentSuccess": "warning"}
    # Helm did not evaluate the annotations' Prometheus templates
    assert "{{ $labels.kind }}" in alerts["ReconcilerConsecutiveFailures"]["annotations"]["summary"]


def test_grafana_dashboard_configmap_carries_the_dashboard(helm: Renderer) -> None:
    [cm] = [d for d in of_kind(helm.template(MONITORING), "ConfigMap")
            if d["metadata"]["name"].endswith("-dashboard")]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Reconciler"}
    dashboard = json.loads(cm["data"]["reconciler.json"])
    titles = [p["title"] for p in dashboard["panels"]]
    assert titles[:4] == ["Success ratio per day", "Run duration (average per day, and last run)",
                          "Errors by type (per day)", "Rows by status (per day)"]
    assert dashboard == json.loads((CHART / "files" / "grafana-dashboard.json").read_text(encoding="utf-8"))


def test_lint_passes_with_rules_and_dashboard(helm: Renderer) -> None:
    assert helm.lint(MONITORING) == []
