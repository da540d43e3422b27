"""Offline checks of the Terraform under terraform/ (no provider download needed).

Every .tf file is parsed with python-hcl2 and the facts pushgate relies on are
asserted: push endpoint and OIDC wiring, retry and dead-letter policies, the
heartbeat attribute, IAM grants, sensitive secrets, typed and documented
variables.

Run: .venv-infra/bin/python -m pytest tests/infra/test_terraform_hcl.py -q

Works with python-hcl2 7.x and with checkov's fork (bc-python-hcl2, which
installs the same ``hcl2`` package and wraps every attribute value in a list).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

hcl2 = pytest.importorskip("hcl2")

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"

GCP_MODULES = ["gcp-scc-pubsub", "gcp-workspace-alerts"]
# Internal module holding the delivery path both GCP modules share (topic, push
# subscription, DLQ, heartbeat, service agent grants); the public modules wrap it.
GCP_SHARED_MODULE = "gcp-pubsub-push"
GCP_SHARED_SOURCE = "../" + GCP_SHARED_MODULE
AZURE_MODULE = "azure-graph-app"
OUR_DIRS = [TERRAFORM / "modules" / m for m in [*GCP_MODULES, GCP_SHARED_MODULE, AZURE_MODULE]] + [
    TERRAFORM / "examples" / "gcp",
    TERRAFORM / "examples" / "azure",
]
PUBSUB_AGENT = "@gcp-sa-pubsub.iam.gserviceaccount.com"
PRIMITIVE_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}

# --------------------------------------------------------------------------
# Parsing helpers
# --------------------------------------------------------------------------

# checkov's fork parses `a = "b"` as {"a": ["b"]}; python-hcl2 7.x as {"a": "b"}.
WRAPPED = isinstance(hcl2.loads('a = "b"\n').get("a"), list)


def attr(block: dict, key: str, default=None):
    """Value of attribute `key` of a block, whichever parser produced it."""
    if key not in block:
        return default
    value = block[key]
    if WRAPPED and isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def blocks(block: dict, key: str) -> list[dict]:
    """Nested blocks named `key` (a list, possibly empty)."""
    value = block.get(key, [])
    return value if isinstance(value, list) else [value]


def one_block(block: dict, key: str) -> dict:
    found = blocks(block, key)
    assert len(found) == 1, f"expected exactly one `{key}` block, found {len(found)}"
    return found[0]


def text(value) -> str:
    """An expression or literal as text with all whitespace and quoting noise removed."""
    s = value if isinstance(value, str) else repr(value)
    s = re.sub(r"\bNone\b", "null", s)  # checkov's fork renders HCL null as None
    return re.sub(r"[\s\\'\"]", "", s)


def is_ref(value, ref: str) -> bool:
    """True if `value` is exactly the expression `ref` (e.g. var.push_url)."""
    return text(value) in {ref, "${" + ref + "}"}


def tf_files(base: Path) -> list[Path]:
    return sorted(p for p in base.rglob("*.tf") if ".terraform" not in p.parts)


@lru_cache(maxsize=None)
def parse(path: Path) -> dict:
    with path.open(encoding="utf-8") as f:
        return hcl2.load(f)


class Config:
    """All top-level blocks of one Terraform directory (module or root)."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.resources: dict[str, dict[str, dict]] = {}
        self.data: dict[str, dict[str, dict]] = {}
        self.variables: dict[str, dict] = {}
        self.outputs: dict[str, dict] = {}
        self.locals: dict = {}
        self.modules: dict[str, dict] = {}
        self.terraform: list[dict] = []
        for path in sorted(directory.glob("*.tf")):
            doc = parse(path)
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for entry in doc.get(kind, []):
                    for rtype, named in entry.items():
                        for name, body in named.items():
                            assert name not in target.setdefault(rtype, {}), f"duplicate {rtype}.{name}"
                            target[rtype][name] = body
            for kind, target in (("variable", self.variables), ("output", self.outputs), ("module", self.modules)):
                for entry in doc.get(kind, []):
                    for name, body in entry.items():
                        assert name not in target, f"duplicate {kind} {name} in {directory}"
                        target[name] = body
            for entry in doc.get("locals", []):
                self.locals.update({k: attr(entry, k) for k in entry if not k.startswith("__")})
            self.terraform.extend(doc.get("terraform", []))

    def resource(self, rtype: str, name: str | None = None) -> dict:
        named = self.resources.get(rtype, {})
        assert named, f"{self.dir.name}: no {rtype} resource"
        if name is None:
            assert len(named) == 1, f"{self.dir.name}: expected one {rtype}, found {sorted(named)}"
            return next(iter(named.values()))
        assert name in named, f"{self.dir.name}: no {rtype}.{name}"
        return named[name]

    def all_of(self, rtype: str) -> dict[str, dict]:
        return self.resources.get(rtype, {})


@lru_cache(maxsize=None)
def config(directory: Path) -> Config:
    return Config(directory)


def module(name: str) -> Config:
    return config(TERRAFORM / "modules" / name)


def example(name: str) -> Config:
    return config(TERRAFORM / "examples" / name)


def validation_text(variable: dict) -> str:
    return " ".join(text(attr(v, "condition")) for v in blocks(variable, "validation"))


# --------------------------------------------------------------------------
# Generic checks on every .tf file under terraform/
# --------------------------------------------------------------------------

ALL_TF = tf_files(TERRAFORM)


def _ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


def test_terraform_tree_exists():
    for d in OUR_DIRS:
        for f in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
            assert (d / f).is_file(), f"missing {d / f}"
    for m in [*GCP_MODULES, GCP_SHARED_MODULE, AZURE_MODULE]:
        assert (TERRAFORM / "modules" / m / "README.md").is_file()


@pytest.mark.parametrize("path", ALL_TF, ids=_ids(ALL_TF))
def test_every_tf_file_parses(path):
    assert isinstance(parse(path), dict)


@pytest.mark.parametrize("path", ALL_TF, ids=_ids(ALL_TF))
def test_every_variable_has_description_and_type(path):
    for entry in parse(path).get("variable", []):
        for name, body in entry.items():
            description = attr(body, "description")
            assert isinstance(description, str) and description.strip(), f"{path}: variable {name} has no description"
            assert attr(body, "type") not in (None, ""), f"{path}: variable {name} has no type"


@pytest.mark.parametrize("path", ALL_TF, ids=_ids(ALL_TF))
def test_outputs_named_secret_are_sensitive(path):
    for entry in parse(path).get("output", []):
        for name, body in entry.items():
            if "secret" in name.lower():
                assert attr(body, "sensitive") is True, f"{path}: output {name} must be sensitive"
            assert isinstance(attr(body, "description"), str), f"{path}: output {name} has no description"


@pytest.mark.parametrize("path", ALL_TF, ids=_ids(ALL_TF))
def test_no_primitive_iam_roles(path):
    raw = path.read_text(encoding="utf-8")
    for role in PRIMITIVE_ROLES:
        assert f'"{role}"' not in raw, f"{path}: primitive role {role}"
    for role in ("Owner", "Contributor"):
        assert f'role_definition_name = "{role}"' not in raw, f"{path}: broad Azure role {role}"


def _our_tf():
    return [p for d in OUR_DIRS for p in tf_files(d)]


@pytest.mark.parametrize("path", _our_tf(), ids=_ids(_our_tf()))
def test_outputs_referencing_secrets_are_sensitive(path):
    secret_refs = re.compile(
        r"azuread_application_password\.[\w-]+\.value|client_secret|var\.client_state|private_key|random_password"
    )
    for entry in parse(path).get("output", []):
        for name, body in entry.items():
            if secret_refs.search(text(attr(body, "value"))):
                assert attr(body, "sensitive") is True, f"{path}: output {name} exposes a secret"


@pytest.mark.parametrize("directory", OUR_DIRS, ids=[str(d.relative_to(ROOT)) for d in OUR_DIRS])
def test_versions(directory):
    cfg = config(directory)
    assert cfg.terraform, f"{directory}: no terraform block"
    tf = cfg.terraform[0]
    assert text(attr(tf, "required_version")) == ">=1.7"
    rp = one_block(tf, "required_providers")
    assert "google" in rp or "azuread" in rp, f"{directory}: google or azuread provider must be required"
    if "google" in rp:
        google = attr(rp, "google")
        assert google["source"] == "hashicorp/google"
        assert text(google["version"]) == ">=5.0,<7.0"
    if "azuread" in rp:
        azuread = attr(rp, "azuread")
        assert azuread["source"] == "hashicorp/azuread"
        assert text(azuread["version"]) == ">=2.47,<4.0"
    assert "azurerm" not in rp


def test_example_module_sources_exist():
    for name in ("gcp", "azure"):
        for mod_name, body in example(name).modules.items():
            source = attr(body, "source")
            assert source.startswith("../../modules/"), f"{name}.{mod_name}: unexpected source {source}"
            assert (TERRAFORM / "examples" / name / source).resolve().is_dir()


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform CLI not installed")
def test_terraform_fmt():
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-list=true", *[str(d) for d in OUR_DIRS]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, "terraform fmt -check failed:\n" + result.stdout + result.stderr


# --------------------------------------------------------------------------
# GCP: Pub/Sub push subscription, OIDC, retry, DLQ, heartbeat (both modules)
# --------------------------------------------------------------------------


def push_subscription(cfg: Config) -> dict:
    pushing = {n: b for n, b in cfg.all_of("google_pubsub_subscription").items() if blocks(b, "push_config")}
    assert len(pushing) == 1, f"{cfg.dir.name}: expected exactly one push subscription, found {sorted(pushing)}"
    return next(iter(pushing.values()))


def ref_name(value, prefix: str) -> str:
    """`google_pubsub_topic.x.id` -> `x` (asserting the prefix)."""
    m = re.fullmatch(r"(?:\$\{)?" + re.escape(prefix) + r"\.([A-Za-z0-9_-]+)\.[A-Za-z_]+\}?", text(value))
    assert m, f"{value!r} is not a reference to {prefix}"
    return m.group(1)


def shared() -> Config:
    return module(GCP_SHARED_MODULE)


def shared_call(name: str) -> tuple[str, dict]:
    """The wrapper's single `module "..." { source = "../gcp-pubsub-push" }` call."""
    calls = {n: b for n, b in module(name).modules.items() if attr(b, "source") == GCP_SHARED_SOURCE}
    assert len(calls) == 1, f"{name}: expected exactly one module call with source {GCP_SHARED_SOURCE}, found {sorted(calls)}"
    assert (TERRAFORM / "modules" / GCP_SHARED_MODULE).is_dir()
    return next(iter(calls.items()))


def delivery(name: str) -> Config:
    """The config holding `name`'s push subscription, heartbeat and DLQ (the shared module),
    after checking that the wrapper passes its own inputs through unchanged."""
    call_name, call = shared_call(name)
    wrapper = module(name)
    for var in ("project_id", "region", "push_url", "audience", "topic_name", "subscription_name",
                "dead_letter_topic_name", "service_account_id", "ack_deadline_seconds",
                "message_retention_duration", "retry_minimum_backoff", "retry_maximum_backoff",
                "max_delivery_attempts", "heartbeat_minutes", "heartbeat_job_name", "kms_key_name",
                "enable_apis", "labels"):
        assert var in wrapper.variables, f"{name}: missing variable {var}"
        assert is_ref(attr(call, var), f"var.{var}"), f"{name}: module.{call_name}.{var} must be var.{var}"
    return shared()


def via_shared(name: str, value) -> object:
    """`module.<shared call>.<output>` in wrapper `name` -> the value of that output in the shared module."""
    call_name, _ = shared_call(name)
    m = re.fullmatch(r"(?:\$\{)?module\." + re.escape(call_name) + r"\.([A-Za-z0-9_-]+)\}?", text(value))
    assert m, f"{name}: {value!r} is not an output of module.{call_name}"
    out = m.group(1)
    assert out in shared().outputs, f"{GCP_SHARED_MODULE}: no output {out} (used by {name})"
    return attr(shared().outputs[out], "value")


def pushed_topic() -> str:
    """Name of the google_pubsub_topic resource the shared module pushes to pushgate."""
    return ref_name(attr(push_subscription(shared()), "topic"), "google_pubsub_topic")


def test_gcp_shared_module_is_internal_and_self_contained():
    cfg = shared()
    # the wrappers add the publishers; the shared module has none of its own
    assert "google_scc_notification_config" not in cfg.resources
    assert "alerts-api-push-notifications" not in text(cfg.resources)
    assert not cfg.modules
    for out in ("service_account_email", "audience", "subscription", "topic", "topic_name",
                "dead_letter_topic", "dead_letter_subscription", "heartbeat_interval_seconds",
                "pushgate_connection_config"):
        assert out in cfg.outputs, f"{GCP_SHARED_MODULE}: missing output {out}"
    topic = pushed_topic()
    assert ref_name(attr(cfg.outputs["topic"], "value"), "google_pubsub_topic") == topic
    assert text(attr(cfg.outputs["topic"], "value")).endswith(".id}")
    assert ref_name(attr(cfg.outputs["topic_name"], "value"), "google_pubsub_topic") == topic
    assert text(attr(cfg.outputs["topic_name"], "value")).endswith(".name}")
    assert text(attr(cfg.outputs["heartbeat_interval_seconds"], "value")) == "${var.heartbeat_minutes*60}"
    # API enabling: the base set plus the wrapper's extra_apis, never disabled on destroy
    apis = cfg.resource("google_project_service", "apis")
    assert attr(apis, "disable_on_destroy") is False
    apis_local = text(cfg.locals["apis"])
    for api in ("iam.googleapis.com", "pubsub.googleapis.com", "cloudscheduler.googleapis.com", "var.extra_apis", "var.enable_apis"):
        assert api in apis_local, f"{GCP_SHARED_MODULE}: local.apis lacks {api}"
    # both topics: optional CMEK, with the inline checkov justification moved along
    raw = (cfg.dir / "main.tf").read_text(encoding="utf-8")
    assert raw.count("#checkov:skip=CKV_GCP_83:") == len(cfg.all_of("google_pubsub_topic")) == 2
    for topic_body in cfg.all_of("google_pubsub_topic").values():
        assert is_ref(attr(topic_body, "kms_key_name"), "var.kms_key_name")
    cmek = cfg.resource("google_kms_crypto_key_iam_member", "pubsub_cmek")
    assert "var.kms_key_name==null?0:1" in text(attr(cmek, "count"))
    assert attr(cmek, "role") == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    assert is_ref(attr(cmek, "member"), "local.pubsub_service_agent")


@pytest.mark.parametrize("name", GCP_MODULES)
def test_gcp_wrapper_calls_shared_module(name):
    wrapper = module(name)
    call_name, call = shared_call(name)
    inner = shared()

    passed = {k for k in call if not k.startswith("__") and k not in ("source", "depends_on", "providers")}
    unknown = passed - set(inner.variables)
    assert not unknown, f"{name}: module.{call_name} gets arguments the shared module does not declare: {sorted(unknown)}"
    required = {v for v, body in inner.variables.items() if "default" not in body}
    assert required <= passed, f"{name}: module.{call_name} lacks required inputs {sorted(required - passed)}"
    # every input both modules declare is passed through as-is
    for var in set(wrapper.variables) & set(inner.variables):
        assert is_ref(attr(call, var), f"var.{var}"), f"{name}: module.{call_name}.{var} must be var.{var}"
    assert attr(call, "service_account_display_name")

    extra = {"gcp-scc-pubsub": "securitycenter.googleapis.com", "gcp-workspace-alerts": "alertcenter.googleapis.com"}[name]
    assert attr(call, "extra_apis") == [extra]

    # every module.<call>.<output> reference in the wrapper names a real output
    raw = " ".join(p.read_text(encoding="utf-8") for p in tf_files(wrapper.dir))
    refs = set(re.findall(r"\bmodule\." + re.escape(call_name) + r"\.([A-Za-z0-9_-]+)(?![.\w-])", raw))
    assert refs, f"{name}: no outputs of module.{call_name} used"
    assert refs <= set(inner.outputs), f"{name}: unknown outputs {sorted(refs - set(inner.outputs))}"
    assert not re.search(r"\bmodule\.(?!" + re.escape(call_name) + r"\.)", raw), f"{name}: reference to another module"

    # the shared resources live only in the shared module now
    for rtype in ("google_pubsub_subscription", "google_cloud_scheduler_job", "google_service_account",
                  "google_pubsub_topic", "google_project_service", "google_kms_crypto_key_iam_member"):
        assert not wrapper.all_of(rtype), f"{name}: {rtype} belongs in {GCP_SHARED_MODULE}"


@pytest.mark.parametrize("name", GCP_MODULES)
def test_gcp_push_endpoint_and_oidc(name):
    cfg = delivery(name)
    sub = push_subscription(cfg)
    push = one_block(sub, "push_config")
    assert is_ref(attr(push, "push_endpoint"), "var.push_url")

    oidc = one_block(push, "oidc_token")
    sa_ref = attr(oidc, "service_account_email")
    sa_name = ref_name(sa_ref, "google_service_account")
    assert text(sa_ref).endswith(".email}") or text(sa_ref).endswith(".email")
    cfg.resource("google_service_account", sa_name)

    audience = attr(oidc, "audience")
    assert audience is not None
    if is_ref(audience, "local.audience"):
        assert text(cfg.locals["audience"]) in {"${coalesce(var.audience,var.push_url)}", "coalesce(var.audience,var.push_url)"}
    else:
        assert "var.audience" in text(audience) and "var.push_url" in text(audience)
    assert attr(cfg.variables["audience"], "default", "missing") is None
    # the public input too, and it reaches the shared module unchanged
    assert attr(module(name).variables["audience"], "default", "missing") is None
    _, call = shared_call(name)
    assert is_ref(attr(call, "push_url"), "var.push_url")
    assert is_ref(attr(call, "audience"), "var.audience")
    assert is_ref(via_shared(name, attr(module(name).outputs["audience"], "value")), "local.audience")
    sa_out = via_shared(name, attr(module(name).outputs["service_account_email"], "value"))
    assert ref_name(sa_out, "google_service_account") == sa_name


@pytest.mark.parametrize("name", GCP_MODULES)
def test_gcp_push_url_validation(name):
    var = module(name).variables["push_url"]
    cond = validation_text(var)
    assert "https://" in cond and "/push/gcp-pubsub/" in cond
    assert "default" not in var, "push_url must be required"
    assert "default" not in shared().variables["push_url"], "push_url must be required"


@pytest.mark.parametrize("name", GCP_MODULES)
def test_gcp_retry_deadletter_ack_retention(name):
    wrapper = module(name)
    cfg = delivery(name)
    sub = push_subscription(cfg)

    retry = one_block(sub, "retry_policy")
    assert attr(retry, "minimum_backoff") and attr(retry, "maximum_backoff")
    assert is_ref(attr(retry, "minimum_backoff"), "var.retry_minimum_backoff")
    assert is_ref(attr(retry, "maximum_backoff"), "var.retry_maximum_backoff")

    dlp = one_block(sub, "dead_letter_policy")
    dlq_name = ref_name(attr(dlp, "dead_letter_topic"), "google_pubsub_topic")
    topic_name = ref_name(attr(sub, "topic"), "google_pubsub_topic")
    assert dlq_name != topic_name, "dead-letter topic must differ from the source topic"
    cfg.resource("google_pubsub_topic", dlq_name)
    assert is_ref(attr(dlp, "max_delivery_attempts"), "var.max_delivery_attempts")

    # dead letters must land somewhere: a subscription on the DLQ topic
    dlq_subs = [
        b for b in cfg.all_of("google_pubsub_subscription").values()
        if ref_name(attr(b, "topic"), "google_pubsub_topic") == dlq_name
    ]
    assert dlq_subs, "no subscription keeps the dead-lettered messages"

    assert is_ref(attr(sub, "ack_deadline_seconds"), "var.ack_deadline_seconds")
    ack = validation_text(wrapper.variables["ack_deadline_seconds"])
    assert ">=10" in ack and "<=600" in ack
    assert attr(wrapper.variables["ack_deadline_seconds"], "type") in ("number", "${number}")
    assert attr(cfg.variables["ack_deadline_seconds"], "type") in ("number", "${number}")

    assert is_ref(attr(sub, "message_retention_duration"), "var.message_retention_duration")
    mad = validation_text(wrapper.variables["max_delivery_attempts"])
    assert ">=5" in mad and "<=100" in mad

    # the wrapper's dead-letter outputs are the shared module's DLQ topic and subscription
    dlq_out = via_shared(name, attr(wrapper.outputs["dead_letter_topic"], "value"))
    assert ref_name(dlq_out, "google_pubsub_topic") == dlq_name
    dlq_sub_out = ref_name(via_shared(name, attr(wrapper.outputs["dead_letter_subscription"], "value")), "google_pubsub_subscription")
    assert ref_name(attr(cfg.resource("google_pubsub_subscription", dlq_sub_out), "topic"), "google_pubsub_topic") == dlq_name


@pytest.mark.parametrize("name", GCP_MODULES)
def test_gcp_pubsub_service_agent_grants(name):
    cfg = delivery(name)
    sub_name = next(n for n, b in cfg.all_of("google_pubsub_subscription").items() if blocks(b, "push_config"))
    dlq_name = ref_name(attr(one_block(push_subscription(cfg), "dead_letter_policy"), "dead_letter_topic"), "google_pubsub_topic")
    agent = text(cfg.locals.get("pubsub_service_agent", ""))
    assert "service-${data.google_project.this.number}" + PUBSUB_AGENT in agent

    def is_agent(member) -> bool:
        return is_ref(member, "local.pubsub_service_agent") or PUBSUB_AGENT in text(member)

    token = [b for b in cfg.all_of("google_service_account_iam_member").values()
             if attr(b, "role") == "roles/iam.serviceAccountTokenCreator" and is_agent(attr(b, "member"))]
    assert token, "Pub/Sub service agent needs serviceAccountTokenCreator on the push SA"
    assert ref_name(attr(token[0], "service_account_id"), "google_service_account")
    for c in (cfg, module(name)):
        assert not c.all_of("google_project_iam_member"), "grant on resources, not project-wide"
        assert not c.all_of("google_project_iam_binding")

    pubs = [b for b in cfg.all_of("google_pubsub_topic_iam_member").values()
            if attr(b, "role") == "roles/pubsub.publisher" and is_agent(attr(b, "member"))]
    assert any(ref_name(attr(b, "topic"), "google_pubsub_topic") == dlq_name for b in pubs), \
        "Pub/Sub service agent needs publisher on the dead-letter topic"

    subs = [b for b in cfg.all_of("google_pubsub_subscription_iam_member").values()
            if attr(b, "role") == "roles/pubsub.subscriber" and is_agent(attr(b, "member"))]
    assert any(ref_name(attr(b, "subscription"), "google_pubsub_subscription") == sub_name for b in subs), \
        "Pub/Sub service agent needs subscriber on the push subscription"


@pytest.mark.parametrize("name", GCP_MODULES)
def test_gcp_heartbeat_job(name):
    cfg = delivery(name)
    job = cfg.resource("google_cloud_scheduler_job")
    schedule = text(attr(job, "schedule"))
    if schedule.startswith("${local."):
        schedule = text(cfg.locals[schedule[len("${local."):-1]])
    assert "*/${var.heartbeat_minutes}****" in schedule

    target = one_block(job, "pubsub_target")
    topic_name = ref_name(attr(target, "topic_name"), "google_pubsub_topic")
    sub = push_subscription(cfg)
    assert topic_name == ref_name(attr(sub, "topic"), "google_pubsub_topic"), "heartbeat must go through the pushed topic"
    assert attr(target, "attributes") == {"pushgate_kind": "heartbeat"}
    assert "base64encode(" in text(attr(target, "data"))

    hb = validation_text(module(name).variables["heartbeat_minutes"])
    assert ">=1" in hb and "<=59" in hb
    _, call = shared_call(name)
    assert is_ref(attr(call, "heartbeat_minutes"), "var.heartbeat_minutes")
    assert is_ref(attr(call, "heartbeat_job_name"), "var.heartbeat_job_name")
    assert text(via_shared(name, attr(module(name).outputs["heartbeat_interval_seconds"], "value"))) == "${var.heartbeat_minutes*60}"


@pytest.mark.parametrize("name", GCP_MODULES)
def test_gcp_outputs(name):
    cfg = module(name)
    inner = delivery(name)
    for out in ("service_account_email", "audience", "subscription", "pushgate_connection_config"):
        assert out in cfg.outputs, f"{name}: missing output {out}"
        assert out in inner.outputs, f"{GCP_SHARED_MODULE}: missing output {out}"
    assert text(via_shared(name, attr(cfg.outputs["subscription"], "value"))) == "${google_pubsub_subscription.push.id}"
    assert blocks(inner.resource("google_pubsub_subscription", "push"), "push_config")
    assert ref_name(via_shared(name, attr(cfg.outputs["topic"], "value")), "google_pubsub_topic") == pushed_topic()
    conn = via_shared(name, attr(cfg.outputs["pushgate_connection_config"], "value"))
    assert isinstance(conn, dict), conn
    # exactly the keys pushgate's gcp_pubsub config accepts (unknown keys are rejected)
    assert set(k for k in conn if not k.startswith("__")) == {"service_account_email", "audience", "subscriptions"}
    assert text(conn["subscriptions"]) == "${[google_pubsub_subscription.push.id]}" or conn["subscriptions"] == [
        "${google_pubsub_subscription.push.id}"
    ]
    assert is_ref(conn["audience"], "local.audience")
    assert ref_name(conn["service_account_email"], "google_service_account") == "push"
    for body in cfg.outputs.values():
        assert attr(body, "sensitive") is not True


def test_scc_notification_config():
    cfg = module("gcp-scc-pubsub")
    delivery("gcp-scc-pubsub")
    scc = cfg.resource("google_scc_notification_config")
    assert is_ref(attr(scc, "organization"), "var.organization_id")
    assert is_ref(attr(scc, "config_id"), "var.scc_notification_config_id")
    topic = ref_name(via_shared("gcp-scc-pubsub", attr(scc, "pubsub_topic")), "google_pubsub_topic")
    assert text(via_shared("gcp-scc-pubsub", attr(scc, "pubsub_topic"))).endswith(".id}")
    assert topic == pushed_topic()
    assert is_ref(attr(one_block(scc, "streaming_config"), "filter"), "var.scc_filter")
    default = text(attr(cfg.variables["scc_filter"], "default"))
    assert "state=ACTIVE" in default and "NOTmute=MUTED" in default and "severity" in default

    grants = [b for b in cfg.all_of("google_pubsub_topic_iam_member").values()
              if "google_scc_notification_config" in text(attr(b, "member"))]
    assert grants and attr(grants[0], "role") == "roles/pubsub.publisher"
    assert len(grants) == 1
    assert ref_name(via_shared("gcp-scc-pubsub", attr(grants[0], "topic")), "google_pubsub_topic") == topic
    assert text(via_shared("gcp-scc-pubsub", attr(grants[0], "topic"))).endswith(".name}"), "topic IAM takes the topic name"
    assert is_ref(attr(grants[0], "project"), "var.project_id")
    assert "google_scc_notification_config.findings.name" in text(attr(cfg.outputs["scc_notification_config"], "value"))


def test_workspace_alerts_publisher_grant():
    cfg = module("gcp-workspace-alerts")
    delivery("gcp-workspace-alerts")
    topic = pushed_topic()
    grants = [b for b in cfg.all_of("google_pubsub_topic_iam_member").values()
              if attr(b, "member") == "serviceAccount:alerts-api-push-notifications@system.gserviceaccount.com"]
    assert len(grants) == 1
    assert attr(grants[0], "role") == "roles/pubsub.publisher"
    assert ref_name(via_shared("gcp-workspace-alerts", attr(grants[0], "topic")), "google_pubsub_topic") == topic
    assert text(via_shared("gcp-workspace-alerts", attr(grants[0], "topic"))).endswith(".name}"), "topic IAM takes the topic name"
    assert is_ref(attr(grants[0], "project"), "var.project_id")
    assert "google_scc_notification_config" not in cfg.resources
    assert "google_scc_notification_config" not in shared().resources

    body = text(attr(cfg.outputs["alert_center_settings_body"], "value"))
    assert "jsonencode(" in body and re.search(r"payloadFormat[:=]JSON", body)
    topic_ref = re.search(r"topicName[:=]\$?\{?(module\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+)", body)
    assert topic_ref, body
    assert ref_name(via_shared("gcp-workspace-alerts", topic_ref.group(1)), "google_pubsub_topic") == topic


# --------------------------------------------------------------------------
# Azure: Entra app for Microsoft Graph subscriptions
# --------------------------------------------------------------------------


def test_azure_graph_permissions_and_consent():
    cfg = module(AZURE_MODULE)
    msgraph = cfg.data["azuread_service_principal"]["msgraph"]
    assert attr(msgraph, "client_id") == "00000003-0000-0000-c000-000000000000"

    perms = cfg.variables["graph_application_permissions"]
    assert attr(perms, "type") in ("list(string)", "${list(string)}")
    assert set(attr(perms, "default")) >= {"User.Read.All", "Group.Read.All"}

    app = cfg.resource("azuread_application")
    rra = one_block(app, "required_resource_access")
    assert "azuread_service_principal.msgraph" in text(attr(rra, "resource_app_id"))
    access = one_block(one_block(rra, "dynamic"), "resource_access")
    content = one_block(access, "content")
    assert "app_role_ids" in text(attr(content, "id"))
    assert attr(content, "type") == "Role"

    cfg.resource("azuread_service_principal")
    assignment = cfg.resource("azuread_app_role_assignment")
    assert "var.graph_application_permissions" in text(attr(assignment, "for_each")) or "local.graph_permissions" in text(
        attr(assignment, "for_each")
    )
    assert "msgraph.app_role_ids[each.value]" in text(attr(assignment, "app_role_id"))
    assert "msgraph.object_id" in text(attr(assignment, "resource_object_id"))
    assert "azurerm" not in " ".join(cfg.resources)


def test_azure_client_secret():
    cfg = module(AZURE_MODULE)
    pw = cfg.resource("azuread_application_password")
    assert is_ref(attr(pw, "end_date"), "var.client_secret_end_date")
    assert "var.client_secret_rotation" in text(attr(pw, "rotate_when_changed"))
    out = cfg.outputs["client_secret"]
    assert attr(out, "sensitive") is True
    assert "azuread_application_password" in text(attr(out, "value"))
    for name in ("client_id", "tenant_id", "pushgate_connection_config"):
        assert name in cfg.outputs


def test_azure_encryption_certificate_optional():
    cfg = module(AZURE_MODULE)
    var = cfg.variables["encryption_certificate_pem"]
    assert "default" in var and attr(var, "default") is None
    cert = cfg.resource("azuread_application_certificate")
    assert "var.encryption_certificate_pem==null?0:1" in text(attr(cert, "count"))
    assert attr(cert, "type") == "AsymmetricX509Cert"
    assert is_ref(attr(cert, "value"), "var.encryption_certificate_pem")


def test_azure_connection_config_has_no_secret():
    cfg = module(AZURE_MODULE)
    out = cfg.outputs["pushgate_connection_config"]
    assert attr(out, "sensitive") is not True
    value = attr(out, "value")
    assert isinstance(value, dict)
    assert {"tenant_ids", "app_ids", "subscription"} <= set(value)
    sub = value["subscription"]
    sub = sub[0] if isinstance(sub, list) else sub
    assert set(k for k in sub if not k.startswith("__")) == {"resource", "change_type", "tenant_id", "client_id"}
    assert "secret" not in text(value).lower()


# --------------------------------------------------------------------------
# Examples
# --------------------------------------------------------------------------


def test_gcp_example():
    cfg = example("gcp")
    sources = {attr(b, "source") for b in cfg.modules.values()}
    assert sources == {"../../modules/gcp-scc-pubsub", "../../modules/gcp-workspace-alerts"}
    for body in cfg.modules.values():
        assert "/push/gcp-pubsub/" in text(cfg.locals[text(attr(body, "push_url"))[len("${local."):-1]])

    out = cfg.outputs["pushgate_connection_bodies"]
    assert "jsonencode(" in text(attr(out, "value"))
    bodies = cfg.locals["connection_bodies"]
    assert set(bodies) == {"scc_findings", "workspace_alerts"}
    for body in bodies.values():
        assert attr(body, "source", body.get("source")) == "gcp_pubsub"
        assert {"tenant_id", "name", "source", "stream", "heartbeat_interval_seconds", "config"} <= set(body)
        assert text(body["heartbeat_interval_seconds"]) == "${var.heartbeat_minutes*60}"
        assert "pushgate_connection_config" in text(body["config"])


def test_azure_example():
    cfg = example("azure")
    assert {attr(b, "source") for b in cfg.modules.values()} == {"../../modules/azure-graph-app"}
    body = cfg.outputs["pushgate_connection_body"]
    assert attr(body, "sensitive") is True
    assert "ms_graph" in text(cfg.locals["connection_body_public"])
    assert "client_state" in text(cfg.locals["connection_body_public"])
    assert "REPLACE_WITH_CLIENT_STATE" in text(cfg.locals["client_state_placeholder"])
    redacted = cfg.outputs["pushgate_connection_body_redacted"]
    assert "client_secret" not in text(attr(redacted, "value"))
    assert "client_secret" not in text(cfg.locals["connection_body_public"])
    assert attr(cfg.variables["client_state"], "sensitive") is True


# --------------------------------------------------------------------------
# AWS: the bucket of an s3 destination and pushgate's grant on it. terraform test
# (terraform/modules/aws-s3-destination/tests) checks the plan; these checks keep the
# grant pinned where terraform is not installed.
# --------------------------------------------------------------------------

S3_MODULE = "aws-s3-destination"


def s3_statements(cfg: Config, document: str) -> list[dict]:
    """Every statement of a policy document, the dynamic ones' content included."""
    doc = cfg.data["aws_iam_policy_document"][document]
    found = list(blocks(doc, "statement"))
    for dyn in blocks(doc, "dynamic"):
        if "statement" in dyn:
            found.extend(blocks(dyn["statement"], "content"))
    return found


def test_s3_destination_grants_only_put_object_on_the_prefix():
    cfg = module(S3_MODULE)
    assert text(cfg.locals["bucket_arn"]) == "arn:${data.aws_partition.current.partition}:s3:::${var.bucket_name}"
    assert text(cfg.locals["objects_arn"]) == "${local.bucket_arn}/${var.prefix}/*"

    statements = s3_statements(cfg, "put")
    assert len(statements) == 2, "one PutObject statement and the optional KMS one"
    for s in statements:
        assert attr(s, "effect") == "Allow"
        for widening in ("not_actions", "not_resources", "principals"):
            assert widening not in s, f"the grant must not use {widening}"
    by_sid = {attr(s, "sid"): s for s in statements}
    put = by_sid["PutPushgateObjects"]
    assert attr(put, "actions") == ["s3:PutObject"]
    assert [text(r) for r in attr(put, "resources")] == ["${local.objects_arn}"]

    kms = by_sid["EncryptPushgateObjects"]
    assert attr(kms, "actions") == ["kms:GenerateDataKey"]
    assert [text(r) for r in attr(kms, "resources")] == ["${statement.value}"]
    dyn = one_block(cfg.data["aws_iam_policy_document"]["put"], "dynamic")["statement"]
    assert text(attr(dyn, "for_each")) == "${var.kms_key_arn==null?[]:[${var.kms_key_arn}]}"
    via = one_block(kms, "condition")
    assert (attr(via, "test"), attr(via, "variable")) == ("StringEquals", "kms:ViaService")
    assert [text(v) for v in attr(via, "values")] == ["s3.${data.aws_region.current.name}.amazonaws.com"]

    policy = cfg.resource("aws_iam_policy", "put")
    assert is_ref(attr(policy, "policy"), "data.aws_iam_policy_document.put.json")
    assert is_ref(attr(cfg.outputs["policy_json"], "value"), "data.aws_iam_policy_document.put.json")
    attachment = cfg.resource("aws_iam_role_policy_attachment", "put")
    assert is_ref(attr(attachment, "role"), "var.role_name")
    assert "var.role_name==null?0:1" in text(attr(attachment, "count"))
    # no other grant anywhere in the module
    assert set(cfg.resources) & {"aws_iam_role_policy", "aws_iam_user_policy", "aws_iam_group_policy"} == set()
    assert set(cfg.data["aws_iam_policy_document"]) == {"put", "bucket"}


def test_s3_destination_bucket_policy_only_denies_plain_http():
    cfg = module(S3_MODULE)
    (deny,) = s3_statements(cfg, "bucket")
    assert attr(deny, "effect") == "Deny"
    assert attr(deny, "actions") == ["s3:*"]
    assert sorted(text(r) for r in attr(deny, "resources")) == ["${local.bucket_arn}", "${local.bucket_arn}/*"]
    principals = one_block(deny, "principals")
    assert (attr(principals, "type"), attr(principals, "identifiers")) == ("*", ["*"])
    tls = one_block(deny, "condition")
    assert (attr(tls, "test"), attr(tls, "variable"), attr(tls, "values")) == ("Bool", "aws:SecureTransport", ["false"])
    assert is_ref(attr(cfg.resource("aws_s3_bucket_policy", "this"), "policy"), "data.aws_iam_policy_document.bucket.json")


def test_s3_destination_bucket_settings():
    cfg = module(S3_MODULE)
    assert text(cfg.locals["bucket"]) == "${var.create_bucket?1:0}"
    for rtype in ("aws_s3_bucket", "aws_s3_bucket_server_side_encryption_configuration", "aws_s3_bucket_versioning",
                  "aws_s3_bucket_public_access_block", "aws_s3_bucket_ownership_controls",
                  "aws_s3_bucket_lifecycle_configuration", "aws_s3_bucket_policy"):
        body = cfg.resource(rtype, "this")
        assert is_ref(attr(body, "count"), "local.bucket"), f"{rtype} must exist only with create_bucket"
        if rtype != "aws_s3_bucket":
            assert is_ref(attr(body, "bucket"), "aws_s3_bucket.this[count.index].id")

    sse = one_block(one_block(cfg.resource("aws_s3_bucket_server_side_encryption_configuration", "this"), "rule"),
                    "apply_server_side_encryption_by_default")
    assert text(attr(sse, "sse_algorithm")) == "${var.kms_key_arn==null?AES256:aws:kms}"
    assert is_ref(attr(sse, "kms_master_key_id"), "var.kms_key_arn")

    versioning = one_block(cfg.resource("aws_s3_bucket_versioning", "this"), "versioning_configuration")
    assert attr(versioning, "status") == "Disabled"

    pab = cfg.resource("aws_s3_bucket_public_access_block", "this")
    for setting in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert attr(pab, setting) is True, setting
    ownership = one_block(cfg.resource("aws_s3_bucket_ownership_controls", "this"), "rule")
    assert attr(ownership, "object_ownership") == "BucketOwnerEnforced"

    rules = {attr(r, "id"): r for r in blocks(cfg.resource("aws_s3_bucket_lifecycle_configuration", "this"), "rule")}
    assert set(rules) == {"pushgate-retention", "abort-incomplete-multipart-uploads"}
    retention = rules["pushgate-retention"]
    assert attr(retention, "status") == "Enabled"
    assert text(attr(one_block(retention, "filter"), "prefix")) == "${var.prefix}/"
    assert is_ref(attr(one_block(retention, "expiration"), "days"), "var.retention_days")
    cleanup = rules["abort-incomplete-multipart-uploads"]
    assert attr(cleanup, "status") == "Enabled" and "expiration" not in cleanup
    assert is_ref(attr(one_block(cleanup, "abort_incomplete_multipart_upload"), "days_after_initiation"),
                  "var.abort_incomplete_multipart_upload_days")
    assert attr(cfg.variables["retention_days"], "default") == 365


def test_s3_destination_prefix_cannot_widen_the_grant():
    cfg = module(S3_MODULE)
    prefix = validation_text(cfg.variables["prefix"])
    # the allowed characters exclude IAM wildcards and policy variables, and '/' only separates names
    allowed = re.search(r"\^\[([^\]]*)\]\+\(/\[([^\]]*)\]\+\)\*\$", prefix)
    assert allowed, prefix
    for chars in allowed.groups():
        assert not set(chars) & set("*?$/{}"), chars
    assert "<=512" in prefix
    out = attr(cfg.outputs["destination_config"], "value")
    assert set(k for k in out if not k.startswith("__")) == {"bucket", "prefix", "region"}
    assert is_ref(out["prefix"], "var.prefix")
