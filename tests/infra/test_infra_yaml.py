"""Offline checks of the deployment files under infra/ (no container engine, no cluster).

Parses every YAML file and the Grafana dashboard JSON and asserts the properties the
deployment relies on. Run from anywhere:

    .venv-infra/bin/python -m pytest tests/infra/test_infra_yaml.py -q

Self-contained: needs only pytest and PyYAML, no conftest.py.
"""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
K8S = INFRA / "kubernetes"

METRIC_RE = re.compile(r"\bpushgate_[a-z_]+\b")
# Metrics the dashboard and the alerts may use: the contract written in infra/README.md.
DOCUMENTED_METRICS = {
    "pushgate_connection_status",
    "pushgate_connection_seconds_since_heartbeat",
    "pushgate_connection_seconds_since_data",
    "pushgate_events_total",
    "pushgate_duplicates_total",
    "pushgate_rejections_total",
    "pushgate_raw_events_total",
    "pushgate_requests_total",
    "pushgate_request_duration_seconds",
    "pushgate_request_duration_seconds_bucket",
    "pushgate_forward_delivered_total",
    "pushgate_forward_dead_letters_total",
    "pushgate_forward_retries_total",
    "pushgate_forward_expired_total",
    "pushgate_forward_lag_events",
    "pushgate_forward_lag_seconds",
    "pushgate_forward_destination_status",
    "pushgate_retention_passes_total",
    "pushgate_retention_deleted_events_total",
    "pushgate_retention_expired_events_total",
}
# The alerts the tests below require, and those alerts.test.yml must exercise.
REQUIRED_ALERTS = (
    "PushgateDown",
    "PushgateConnectionError",
    "PushgateHeartbeatStale",
    "PushgateRejectionsHigh",
    "PushgateDestinationFailing",
    "PushgateDestinationLagHigh",
    "PushgateDestinationEventsExpired",
    "PushgateDestinationDeadLetters",
)


def load_yaml_docs(path: Path) -> list:
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def load_yaml(path: Path):
    docs = load_yaml_docs(path)
    assert len(docs) == 1, f"{path} should hold exactly one YAML document"
    return docs[0]


def all_yaml_files() -> list[Path]:
    return sorted(p for p in INFRA.rglob("*") if p.suffix in (".yaml", ".yml"))


def k8s_objects() -> list[dict]:
    objs = []
    for p in sorted(K8S.glob("*.yaml")):
        if p.name == "kustomization.yaml":
            continue
        for doc in load_yaml_docs(p):
            doc["__file__"] = p.name
            objs.append(doc)
    return objs


def k8s_kind(kind: str) -> list[dict]:
    return [o for o in k8s_objects() if o.get("kind") == kind and o["__file__"] != "secret.example.yaml"]


def deployment() -> dict:
    deps = k8s_kind("Deployment")
    assert len(deps) == 1
    return deps[0]


# ---------------------------------------------------------------------------- all YAML


def test_every_yaml_file_parses():
    files = all_yaml_files()
    names = {str(p.relative_to(INFRA)) for p in files}
    for required in (
        "compose.yaml",
        "prometheus/prometheus.yml",
        "prometheus/alerts.yml",
        "kubernetes/kustomization.yaml",
        "kubernetes/deployment.yaml",
    ):
        assert required in names
    for p in files:
        assert load_yaml_docs(p), f"{p} is empty"


# ---------------------------------------------------------------------------- compose


def compose() -> dict:
    return load_yaml(INFRA / "compose.yaml")


def test_compose_has_the_four_services():
    assert {"pushgate", "postgres", "prometheus", "grafana"} <= set(compose()["services"])


def test_compose_pushgate_is_hardened_and_health_checked():
    svc = compose()["services"]["pushgate"]
    assert svc["build"]["dockerfile"] == "infra/Dockerfile"
    assert svc["build"]["context"] == ".."
    assert svc["read_only"] is True
    assert any(str(t).startswith("/tmp") for t in svc["tmpfs"])
    assert any(str(v).endswith(":/var/lib/pushgate") for v in svc["volumes"])
    test = svc["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL")
    assert any(re.search(r"http://127\.0\.0\.1:8080/(healthz|readyz)", part) for part in test)
    assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
    # pushgate drains for up to 30 s: the stop grace must exceed Docker's 10 s default.
    assert svc["stop_grace_period"] == "40s"
    assert svc["environment"]["PUSHGATE_LISTEN"] == "0.0.0.0:8080"


def test_compose_commits_no_secret():
    env = compose()["services"]["pushgate"]["environment"]
    assert env["PUSHGATE_DATABASE_URL"].startswith("postgres://")
    for key in ("PUSHGATE_MASTER_KEY", "PUSHGATE_ADMIN_TOKEN"):
        assert re.fullmatch(r"\$\{%s:\?[^}]+\}" % key, env[key]), f"{key} must come from ${{{key}:?...}}"
    assert "${POSTGRES_PASSWORD:?" in env["PUSHGATE_DATABASE_URL"]
    pg_env = compose()["services"]["postgres"]["environment"]
    assert pg_env["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    graf_env = compose()["services"]["grafana"]["environment"]
    assert graf_env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")


def test_compose_postgres_and_prometheus():
    c = compose()
    pg = c["services"]["postgres"]
    assert str(pg["image"]).startswith("postgres:16")
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert any(str(v).split(":")[0] in c["volumes"] for v in pg["volumes"]), "postgres needs a named volume"
    prom = c["services"]["prometheus"]
    assert "pushgate_admin_token" in prom["secrets"]
    assert "pushgate_admin_token" in c["secrets"]


# ---------------------------------------------------------------------------- prometheus


def test_prometheus_scrapes_pushgate_metrics_with_a_token_file():
    cfg = load_yaml(INFRA / "prometheus/prometheus.yml")
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    job = jobs["pushgate"]
    assert job["metrics_path"] == "/metrics"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert "pushgate:8080" in targets
    auth = job["authorization"]
    assert auth.get("type", "Bearer") == "Bearer"
    assert auth["credentials_file"].startswith("/")
    assert "credentials" not in auth and "bearer_token" not in job, "no inline token"
    # the secret mounted by compose is the file read here
    assert auth["credentials_file"] == "/run/secrets/pushgate_admin_token"
    assert "alerts.yml" in cfg["rule_files"]


def alert_rules() -> list[dict]:
    doc = load_yaml(INFRA / "prometheus/alerts.yml")
    rules = [r for g in doc["groups"] for r in g["rules"]]
    assert rules
    return rules


def test_every_alert_rule_is_complete():
    for rule in alert_rules():
        name = rule.get("alert")
        assert name and name.startswith("Pushgate"), rule
        assert rule["expr"].strip(), name
        assert re.fullmatch(r"\d+[smh]", str(rule["for"])), name
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        assert rule["annotations"]["summary"].strip(), name
        # every rule looks at pushgate: one of its metrics, or its scrape job's `up`
        assert METRIC_RE.search(rule["expr"]) or 'job="pushgate"' in rule["expr"], name
        for metric in METRIC_RE.findall(rule["expr"]):
            assert metric in DOCUMENTED_METRICS, f"{name} uses undocumented {metric}"


def test_required_alerts_exist():
    by_name = {r["alert"]: r for r in alert_rules()}
    for name in REQUIRED_ALERTS:
        assert name in by_name
    assert 'pushgate_connection_status{status="error"} == 1' in by_name["PushgateConnectionError"]["expr"]
    assert "pushgate_connection_seconds_since_heartbeat >" in by_name["PushgateHeartbeatStale"]["expr"]
    assert "rate(pushgate_rejections_total[5m])" in by_name["PushgateRejectionsHigh"]["expr"]
    assert 'up{job="pushgate"}' in by_name["PushgateDown"]["expr"]


def test_forwarding_alerts():
    by_name = {r["alert"]: r for r in alert_rules()}
    failing = by_name["PushgateDestinationFailing"]
    assert failing["expr"].strip() == 'pushgate_forward_destination_status{status="failing"} == 1'
    assert (failing["for"], failing["labels"]["severity"]) == ("5m", "critical")
    assert "{{ $labels.name }}" in failing["annotations"]["summary"]
    assert "GET /v1/destinations/{{ $labels.destination }}" in failing["annotations"]["description"]
    assert "last_error" in failing["annotations"]["description"]
    lag = by_name["PushgateDestinationLagHigh"]
    assert lag["expr"].startswith("pushgate_forward_lag_seconds > 300")
    assert 'unless on (destination) (pushgate_forward_destination_status{status="paused"} == 1)' in lag["expr"]
    assert (lag["for"], lag["labels"]["severity"]) == ("10m", "warning")
    expired = by_name["PushgateDestinationEventsExpired"]
    assert expired["expr"].strip() == "increase(pushgate_forward_expired_total[1h]) > 0"
    assert expired["labels"]["severity"] == "critical"
    dead = by_name["PushgateDestinationDeadLetters"]
    assert dead["expr"].strip() == "increase(pushgate_forward_dead_letters_total[15m]) > 0"
    assert dead["labels"]["severity"] == "warning"
    for rule in (failing, lag, expired, dead):
        assert "{{ $labels.name }}" in rule["annotations"]["summary"], rule["alert"]
        description = rule["annotations"]["description"]
        assert "{{ $labels.name }}" in description and "{{ $labels.destination }}" in description, rule["alert"]


def alert_rule_tests() -> list[dict]:
    doc = load_yaml(INFRA / "prometheus/alerts.test.yml")
    assert doc["rule_files"] == ["alerts.yml"]
    return [t for group in doc["tests"] for t in group["alert_rule_test"]]


def test_every_alert_has_a_promtool_unit_test():
    tests = alert_rule_tests()
    names = {r["alert"] for r in alert_rules()}
    tested = {t["alertname"] for t in tests}
    assert tested <= names, f"tests of unknown alerts: {tested - names}"
    for name in REQUIRED_ALERTS:
        firing = [t for t in tests if t["alertname"] == name and t.get("exp_alerts")]
        assert firing, f"{name} has no promtool test where it fires"
        for t in firing:
            for alert in t["exp_alerts"]:
                assert alert["exp_labels"].get("severity"), (name, t["eval_time"])
                assert alert.get("exp_annotations", {}).get("summary"), (name, t["eval_time"])
    for name in REQUIRED_ALERTS[4:]:
        quiet = [t for t in tests if t["alertname"] == name and not t.get("exp_alerts")]
        assert quiet, f"{name} has no promtool test where it does not fire"


def test_alert_expressions_have_balanced_brackets():
    for rule in alert_rules():
        expr = rule["expr"]
        for o, c in ("()", "[]", "{}"):
            assert expr.count(o) == expr.count(c), rule["alert"]


# ---------------------------------------------------------------------------- grafana


def test_grafana_provisioning():
    ds = load_yaml(INFRA / "grafana/provisioning/datasources/prometheus.yaml")
    assert ds["apiVersion"] == 1
    (prom,) = [d for d in ds["datasources"] if d["type"] == "prometheus"]
    assert prom["url"] == "http://prometheus:9090"
    assert prom["uid"] == "prometheus"
    dash = load_yaml(INFRA / "grafana/provisioning/dashboards/pushgate.yaml")
    (provider,) = dash["providers"]
    assert provider["type"] == "file"
    mounts = compose()["services"]["grafana"]["volumes"]
    assert any(str(m).endswith(":" + provider["options"]["path"] + ":ro") for m in mounts)


def dashboard() -> dict:
    return json.loads((INFRA / "grafana/dashboards/pushgate.json").read_text(encoding="utf-8"))


def test_dashboard_panels_use_pushgate_metrics():
    d = dashboard()
    assert d["uid"] == "pushgate" and d["title"]
    panels = d["panels"]
    assert panels
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    all_exprs = []
    for p in panels:
        if p["type"] == "row":
            assert not p.get("collapsed") and not p.get("panels"), p["title"]
            continue
        assert p["datasource"]["uid"] == "prometheus", p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert METRIC_RE.search(t["expr"]), (p["title"], t["expr"])
            assert t["datasource"]["uid"] == "prometheus"
            for metric in METRIC_RE.findall(t["expr"]):
                assert metric in DOCUMENTED_METRICS, (p["title"], metric)
            all_exprs.append(t["expr"])
    joined = "\n".join(all_exprs)
    assert "sum by (tenant, status) (pushgate_connection_status" in joined
    assert "sum by (source) (rate(pushgate_events_total" in joined
    assert "rate(pushgate_rejections_total[5m])" in joined and "by (reason)" in joined
    assert "histogram_quantile(" in joined and "pushgate_request_duration_seconds_bucket" in joined
    assert "pushgate_connection_seconds_since_heartbeat" in joined


def test_dashboard_panels_do_not_overlap():
    cells = {}
    for p in dashboard()["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["h"] > 0 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, (p["title"], cells.get((x, y)))
                cells[(x, y)] = p["title"]


def test_dashboard_forwarding_row():
    panels = dashboard()["panels"]
    rows = [p for p in panels if p["type"] == "row"]
    assert [r["title"] for r in rows] == ["Forwarding"]
    row_y = rows[0]["gridPos"]["y"]
    below = [p for p in panels if p["type"] != "row" and p["gridPos"]["y"] > row_y]
    above = [p for p in panels if p["type"] != "row" and p["gridPos"]["y"] < row_y]
    assert above and below
    for p in above:
        assert "pushgate_forward_" not in json.dumps(p["targets"]), p["title"]
    joined = "\n".join(t["expr"] for p in below for t in p["targets"])
    for metric in (
        "pushgate_forward_destination_status",
        "pushgate_forward_lag_seconds",
        "pushgate_forward_lag_events",
        "rate(pushgate_forward_delivered_total",
        "rate(pushgate_forward_retries_total",
        "rate(pushgate_forward_dead_letters_total",
    ):
        assert metric in joined, metric
    # every replica reports the same per-destination series: aggregate with max, not sum
    for p in below:
        for t in p["targets"]:
            if "pushgate_forward_" in t["expr"]:
                assert "max by (destination" in t["expr"], (p["title"], t["expr"])
                assert 'name=~"$destination"' in t["expr"], (p["title"], t["expr"])
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["destination"]["query"]["query"] == "label_values(pushgate_forward_destination_status, name)"


def test_readme_documents_every_metric_used():
    readme = (INFRA / "README.md").read_text(encoding="utf-8")
    for metric in DOCUMENTED_METRICS - {"pushgate_request_duration_seconds_bucket"}:
        assert f"`{metric}" in readme, metric


# ---------------------------------------------------------------------------- kubernetes


def test_kustomization_lists_manifests_but_not_the_example_secret():
    k = load_yaml(K8S / "kustomization.yaml")
    res = k["resources"]
    for f in ("namespace.yaml", "deployment.yaml", "service.yaml", "pdb.yaml", "hpa.yaml"):
        assert f in res
        assert (K8S / f).is_file()
    assert "secret.example.yaml" not in res
    assert k["namespace"] == "pushgate"


def test_every_manifest_has_kind_api_version_and_name():
    for o in k8s_objects():
        assert o.get("apiVersion") and o.get("kind") and o["metadata"]["name"], o["__file__"]


def containers_of(dep: dict, init: bool = False) -> list[dict]:
    spec = dep["spec"]["template"]["spec"]
    return spec.get("initContainers" if init else "containers", [])


def env_secret_keys(container: dict) -> dict[str, tuple[str, str]]:
    out = {}
    for e in container.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            out[e["name"]] = (ref["name"], ref["key"])
    return out


def test_deployment_shape():
    dep = deployment()
    spec = dep["spec"]
    assert dep["apiVersion"] == "apps/v1"
    assert spec["replicas"] == 2
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 40
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc["runAsUser"] == 10001
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    inits = containers_of(dep, init=True)
    assert any(c.get("args") == ["migrate"] for c in inits), "migrations run in an initContainer"


def check_container_security(c: dict):
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True, c["name"]
    assert sc["runAsUser"] == 10001, c["name"]
    assert sc["readOnlyRootFilesystem"] is True, c["name"]
    assert sc["allowPrivilegeEscalation"] is False, c["name"]
    assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
    assert sc["seccompProfile"]["type"] == "RuntimeDefault", c["name"]
    assert c["resources"]["requests"] and c["resources"]["limits"], c["name"]
    keys = env_secret_keys(c)
    assert keys["PUSHGATE_DATABASE_URL"] == ("pushgate-secrets", "database-url"), c["name"]
    assert keys["PUSHGATE_MASTER_KEY"] == ("pushgate-secrets", "master-key"), c["name"]


def test_every_container_is_probed_and_locked_down():
    dep = deployment()
    containers = containers_of(dep)
    assert containers
    for c in containers:
        check_container_security(c)
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", c["name"]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", c["name"]
        assert "httpGet" in c["startupProbe"], c["name"]
        assert env_secret_keys(c)["PUSHGATE_ADMIN_TOKEN"] == ("pushgate-secrets", "admin-token")
        ports = {p.get("name"): p["containerPort"] for p in c["ports"]}
        assert 8080 in ports.values()
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            port = c[probe]["httpGet"]["port"]
            assert port in ports or port in ports.values(), (c["name"], probe, port)
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["PUSHGATE_LISTEN"] == "0.0.0.0:8080"
    for c in containers_of(dep, init=True):
        check_container_security(c)


def test_service_targets_the_container_port():
    (svc,) = k8s_kind("Service")
    dep = deployment()
    assert svc["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    (port,) = svc["spec"]["ports"]
    assert port["port"] == 80
    (c,) = containers_of(dep)
    by_name = {p.get("name"): p["containerPort"] for p in c["ports"]}
    target = port["targetPort"]
    assert (by_name.get(target) if isinstance(target, str) else target) == 8080


def test_pdb_selects_the_deployment_pods():
    (pdb,) = k8s_kind("PodDisruptionBudget")
    dep = deployment()
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]


def test_hpa_scales_the_deployment_on_cpu():
    (hpa,) = k8s_kind("HorizontalPodAutoscaler")
    dep = deployment()
    assert hpa["apiVersion"] == "autoscaling/v2"
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"], ref["apiVersion"]) == ("Deployment", dep["metadata"]["name"], "apps/v1")
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 10
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}


def test_example_secret_is_a_placeholder_template():
    text = (K8S / "secret.example.yaml").read_text(encoding="utf-8")
    assert "kubectl" in text and "create secret generic pushgate-secrets" in text
    (secret,) = load_yaml_docs(K8S / "secret.example.yaml")
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "pushgate-secrets"
    data = secret["stringData"]
    assert set(data) == {"master-key", "database-url", "admin-token"}
    for key, value in data.items():
        assert "REPLACE_ME" in value, key


def test_namespace():
    (ns,) = k8s_kind("Namespace")
    assert ns["metadata"]["name"] == "pushgate"


# ---------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (INFRA / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)  # join continuation lines
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_multi_stage_and_runs_as_non_root():
    ins = dockerfile_instructions()
    froms = [rest for word, rest in ins if word == "FROM"]
    assert len(froms) >= 2
    assert re.fullmatch(r"rust:1-bookworm\s+AS\s+builder", froms[0], re.I)
    assert froms[-1].split()[0] in ("debian:bookworm-slim", "gcr.io/distroless/cc-debian12")
    assert any("cargo build --release --locked" in rest for word, rest in ins if word == "RUN")
    assert any("--from=builder" in rest for word, rest in ins if word == "COPY")
    # instructions of the final stage
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    final = ins[last_from:]
    users = [rest for word, rest in final if word == "USER"]
    assert users, "the final stage needs a USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user == "10001"
    healthchecks = [rest for word, rest in final if word == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "/healthz" in healthchecks[0]
    assert "curl -fsS http://127.0.0.1:8080/healthz" in healthchecks[0]
    d = dict(final)
    assert d["WORKDIR"] == "/var/lib/pushgate"
    assert d["ENV"] == "PUSHGATE_LISTEN=0.0.0.0:8080"
    assert d["EXPOSE"] == "8080"
    assert d["STOPSIGNAL"] == "SIGTERM"
    assert json.loads(d["ENTRYPOINT"]) == ["/usr/local/bin/pushgate"]
    assert json.loads(d["CMD"]) == ["serve"]


def test_dockerignore_keeps_the_context_small_but_complete():
    lines = {l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines() if l.strip() and not l.startswith("#")}
    for pattern in ("target/", ".git/", ".venv*/", "*.db"):
        assert pattern in lines
    # what the image build copies must not be ignored
    for needed in ("src", "migrations", "benches", "Cargo.toml", "Cargo.lock"):
        assert needed not in lines and needed + "/" not in lines


def test_dockerfile_copies_only_existing_paths():
    for word, rest in dockerfile_instructions():
        if word == "COPY" and "--from" not in rest:
            *sources, _dest = rest.split()
            for s in sources:
                assert (ROOT / s).exists(), s


# ---------------------------------------------------------------------------- systemd


def systemd_unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",),
                                   comment_prefixes=("#", ";"), empty_lines_in_values=False)
    cp.optionxform = str  # keys are case-sensitive in systemd
    # strict=False: systemd allows repeated keys (SystemCallFilter=); the last one is kept
    cp.read(INFRA / "systemd/pushgate.service", encoding="utf-8")
    return cp


def test_systemd_unit():
    unit = systemd_unit()
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    s = unit["Service"]
    assert s["ExecStart"] == "/usr/local/bin/pushgate serve"
    assert s["User"] == "pushgate"
    assert s["NoNewPrivileges"] == "yes"
    assert s["ProtectSystem"] == "strict"
    assert s["ProtectHome"] == "yes"
    assert s["PrivateTmp"] == "yes"
    assert s["StateDirectory"] == "pushgate"
    assert s["WorkingDirectory"] == "/var/lib/pushgate"
    assert s["EnvironmentFile"] == "-/etc/pushgate/pushgate.env"
    assert s["Restart"] == "on-failure"
    assert s["KillSignal"] == "SIGTERM"
    assert int(s["TimeoutStopSec"]) > 30
    assert s["CapabilityBoundingSet"] == ""
    assert s["RestrictAddressFamilies"].split() == ["AF_INET", "AF_INET6", "AF_UNIX"]
    text = (INFRA / "systemd/pushgate.service").read_text()
    assert "SystemCallFilter=@system-service" in text.splitlines()
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_env_example_has_only_placeholders():
    text = (INFRA / "systemd/pushgate.env.example").read_text()
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"PUSHGATE_[A-Z_]+=\S*", line), line
        if "MASTER_KEY=" in line or "ADMIN_TOKEN=" in line:
            assert "REPLACE_ME" in line, line


def test_compose_env_example_covers_required_variables():
    # variables compose requires (${VAR:?...}), from the parsed values, not the comments
    required = set(re.findall(r"\$\{([A-Z_]+):\?", json.dumps(compose())))
    assert required >= {"POSTGRES_PASSWORD", "PUSHGATE_MASTER_KEY", "PUSHGATE_ADMIN_TOKEN", "GRAFANA_ADMIN_PASSWORD"}
    example = (INFRA / ".env.example").read_text()
    for var in required:
        assert re.search(rf"^{var}=", example, re.M), var


# ---------------------------------------------------------------------------- promtool


def promtool() -> str:
    import shutil

    path = shutil.which("promtool")
    if not path:
        import pytest

        pytest.skip("promtool not installed (Debian package prometheus): SKIPPED")
    return path


def test_promtool_checks_the_rules_and_their_unit_tests():
    import subprocess

    tool = promtool()
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        r = subprocess.run([tool, *args], cwd=INFRA / "prometheus", capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_checks_the_config(tmp_path):
    import shutil
    import subprocess

    tool = promtool()
    # the credentials file only exists inside the container: point it at a stand-in
    cfg = (INFRA / "prometheus/prometheus.yml").read_text()
    token = tmp_path / "token"
    token.write_text("stand-in-token-0123456789\n")
    (tmp_path / "prometheus.yml").write_text(cfg.replace("/run/secrets/pushgate_admin_token", str(token)))
    shutil.copy(INFRA / "prometheus/alerts.yml", tmp_path / "alerts.yml")
    r = subprocess.run([tool, "check", "config", str(tmp_path / "prometheus.yml")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
