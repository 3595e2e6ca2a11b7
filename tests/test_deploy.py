"""`p2pgen deploy kubernetes|dagster`, and the mapping's `schedule:` they read."""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner, Result

from generator.cli import cli
from generator.deploy import Deployable
from generator.deploy.kubernetes import manifests
from generator.errors import P2pgenError
from generator.mapping_reader import load_mapping

ROOT = Path(__file__).resolve().parent.parent
LINKS = ("crm_to_mailer", "invoices_to_crm")
# What a reviewer would worry about in a description: quotes, a newline that starts
# a new YAML document or Python statement, comment signs and braces.
HOSTILE = "a 'b' \"c\"\n---\nkind: Secret\n# d: {e}\nimport os; os.remove('x') \\"


CUSTOMISED = "# p2pgen:begin custom\nCUSTOMISED = True\n"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def with_line(mapping: Path, line: str) -> None:
    """Add a top-level line after `version: 1`."""
    text = mapping.read_text()
    mapping.write_text(text.replace("version: 1\n", f"version: 1\n{line}\n", 1))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example specs and two links, generated; crm_to_mailer every 15 minutes."""
    root = tmp_path_factory.mktemp("repo")
    (root / "pyproject.toml").write_text("")
    shutil.copytree(ROOT / "specs", root / "specs")
    with_line(root / "specs/links/crm_to_mailer.yaml", 'schedule: "*/15 * * * *"')
    description = f"description: {json.dumps(HOSTILE)}"
    text = (root / "specs/links/invoices_to_crm.yaml").read_text()
    (root / "specs/links/invoices_to_crm.yaml").write_text(
        "\n".join(
            description if line.startswith("description:") else line
            for line in text.splitlines()
        )
        + "\n"
    )
    result = invoke("generate", *mappings(root), "--out", root / "generated")
    assert result.exit_code == 0, result.output
    script = root / "generated/invoices_to_crm/invoices_to_crm.py"
    script.write_text(
        script.read_text().replace("# p2pgen:begin custom\n", CUSTOMISED, 1)
    )
    return root


def mappings(root: Path) -> list[Path]:
    return [root / "specs/links" / f"{name}.yaml" for name in LINKS]


def deploy(root: Path, target: str, out: Path, *extra: str) -> Result:
    return invoke(
        "deploy", target, *mappings(root), "-o", out, "--generated",
        root / "generated", *extra,
    )  # fmt: skip


def documents(out: Path, name: str) -> dict[str, dict[str, Any]]:
    docs = list(yaml.safe_load_all((out / f"{name}.yaml").read_text()))
    return {doc["kind"]: doc for doc in docs}


@pytest.fixture(scope="module")
def kube(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kubernetes")
    result = deploy(repo, "kubernetes", out)
    assert result.exit_code == 0, result.output
    return out


# ------------------------------------------------------------------ schedule


@pytest.mark.parametrize(
    ("schedule", "says"),
    [
        ("*/0 * * * *", "minute '*/0': step '0' must be a whole number from 1 to 59"),
        ("0 24 * * *", "hour '24': '24' is not a value from 0 to 23"),
        ("0 * * * 7", "day of week '7': '7' is not a value from 0 to 6 or SUN-SAT"),
        ("* * * *", "has 4 field(s), not 5"),
        ("0 9-5 * * *", "hour '9-5': range '9-5' runs backwards"),
        ("0 0 1 FOO *", "month 'FOO': 'FOO' is not a value from 1 to 12 or JAN-DEC"),
    ],
)
def test_an_invalid_schedule_is_a_located_error_with_a_hint(
    tmp_path: Path, schedule: str, says: str
):
    mapping = tmp_path / "link.yaml"
    shutil.copy(ROOT / "specs/links/crm_to_mailer.yaml", mapping)
    with_line(mapping, f'schedule: "{schedule}"')
    with pytest.raises(P2pgenError) as caught:
        load_mapping(mapping)
    (problem,) = caught.value.problems
    assert str(problem).startswith(
        f"{mapping}:2:11: schedule '{schedule}' {says}; write five cron fields in UTC"
    )
    assert "e.g. '*/15 * * * *'" in problem.message


def test_a_schedule_may_use_lists_ranges_steps_and_names(tmp_path: Path):
    mapping = tmp_path / "link.yaml"
    shutil.copy(ROOT / "specs/links/crm_to_mailer.yaml", mapping)
    with_line(mapping, 'schedule: "0,30  6-18/2 1-31 jan-DEC MON-FRI"')
    assert load_mapping(mapping).schedule == "0,30 6-18/2 1-31 jan-DEC MON-FRI"


def test_without_a_schedule_a_link_runs_hourly():
    assert load_mapping(ROOT / "specs/links/crm_to_mailer.yaml").schedule == (
        "0 * * * *"
    )


# ---------------------------------------------------------------- kubernetes


@pytest.mark.slow
def test_every_manifest_is_valid_against_the_kubernetes_schemas(kube: Path):
    version = kubernetes_validate.latest_version()
    for name in LINKS:
        docs = list(yaml.safe_load_all((kube / f"{name}.yaml").read_text()))
        assert [d["kind"] for d in docs] == [
            "ConfigMap",
            "PersistentVolumeClaim",
            "CronJob",
        ]
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.slow
def test_the_cronjob_runs_the_script_on_schedule_with_secure_defaults(kube: Path):
    cron = documents(kube, "crm_to_mailer")["CronJob"]
    assert cron["metadata"]["name"] == "p2pgen-crm-to-mailer"
    spec = cron["spec"]
    assert spec["schedule"] == "*/15 * * * *"
    assert spec["timeZone"] == "Etc/UTC"
    assert spec["concurrencyPolicy"] == "Forbid"
    job = spec["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] > 0
    pod = job["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert set(container["resources"]) == {"requests", "limits"}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    data = mounts["data"]
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == (
        "p2pgen-crm-to-mailer"
    )
    assert container["command"] == [
        "python",
        f"{mounts['script']}/crm_to_mailer.py",
    ]
    args = container["args"]
    assert args[args.index("--state") + 1] == f"{data}/crm_to_mailer.state.json"
    assert args[args.index("--dead-letter") + 1].startswith(f"{data}/")
    assert volumes["script"]["configMap"]["name"] == "p2pgen-crm-to-mailer"


@pytest.mark.slow
def test_every_variable_comes_from_the_links_secret_and_no_value_is_written(
    kube: Path,
):
    pod = documents(kube, "crm_to_mailer")["CronJob"]["spec"]["jobTemplate"]["spec"]
    (container,) = pod["template"]["spec"]["containers"]
    required = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if not e["valueFrom"]["secretKeyRef"].get("optional")
    }
    assert sorted(required) == ["CRM_TOKEN", "MAILER_API_KEY", "MAILER_LIST_ID"]
    for var, ref in required.items():
        assert ref == {"name": "p2pgen-crm-to-mailer", "key": var}
    assert all("value" not in e for e in container["env"])
    assert "Secret" not in {
        d["kind"] for d in documents(kube, "crm_to_mailer").values()
    }


@pytest.mark.slow
def test_the_configmap_holds_the_script_as_it_is_on_disk(repo: Path, kube: Path):
    script = (repo / "generated/invoices_to_crm/invoices_to_crm.py").read_text()
    assert CUSTOMISED in script
    config_map = documents(kube, "invoices_to_crm")["ConfigMap"]
    assert config_map["data"] == {"invoices_to_crm.py": script}


@pytest.mark.slow
def test_a_description_cannot_inject_yaml(kube: Path):
    docs = list(yaml.safe_load_all((kube / "invoices_to_crm.yaml").read_text()))
    assert len(docs) == 3
    for doc in docs:
        assert doc["metadata"]["annotations"]["p2pgen/description"] == HOSTILE


@pytest.mark.slow
def test_the_dockerfile_installs_the_scripts_dependencies_and_runs_as_non_root(
    kube: Path,
):
    lines = (kube / "Dockerfile").read_text().splitlines()
    installs = [json.loads(line[4:]) for line in lines if "pip" in line]
    pip = ["python", "-m", "pip", "install", "--no-cache-dir"]
    assert installs == [[*pip, "httpx>=0.27", "pydantic>=2.7"]]
    assert "USER 10001:10001" in lines
    assert lines[-1].startswith("WORKDIR")


@pytest.mark.slow
def test_deploying_again_changes_nothing(repo: Path, kube: Path):
    before = {f.name: f.read_bytes() for f in kube.iterdir()}
    result = deploy(repo, "kubernetes", kube)
    assert result.exit_code == 0
    assert "wrote" not in result.output
    assert {f.name: f.read_bytes() for f in kube.iterdir()} == before


@pytest.mark.slow
def test_a_link_without_schedule_runs_hourly_in_the_default_image(kube: Path):
    cron = documents(kube, "invoices_to_crm")["CronJob"]
    assert cron["spec"]["schedule"] == "0 * * * *"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "p2pgen-links:latest"


@pytest.mark.slow
def test_a_script_not_current_on_disk_is_not_deployed(repo: Path, tmp_path: Path):
    result = invoke(
        "deploy", "kubernetes", mappings(repo)[0], "-o", tmp_path / "out",
        "--generated", tmp_path / "nowhere",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "crm_to_mailer.py is missing; run `p2pgen generate" in result.output
    assert not (tmp_path / "out").exists()


def deployable(name: str, mapping_file: str = "m.yaml") -> Deployable:
    return Deployable(name, mapping_file, "", "0 * * * *", "", (), ())


def test_the_cronjobs_run_the_image_given():
    files = manifests([deployable("a_link")], "registry.example/links:1.2")
    cron = list(yaml.safe_load_all(files["a_link.yaml"]))[-1]
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example/links:1.2"
    assert 'docker build -t "registry.example/links:1.2" .' in files["Dockerfile"]


@pytest.mark.parametrize(
    ("names", "says"),
    [
        (["a" * 46], "is longer than 52 characters; shorten the link's name to 45"),
        (["trailing_"], "is not a DNS label; end the link's name with a letter"),
        (["Crm_x", "crm_x"], "is also the name of the link in 0.yaml; rename one"),
    ],
)
def test_a_name_kubernetes_cannot_take_is_an_error(names: list[str], says: str):
    links = [deployable(n, f"{i}.yaml") for i, n in enumerate(names)]
    with pytest.raises(P2pgenError) as caught:
        manifests(links, "image")
    (problem,) = caught.value.problems
    assert says in problem.message
    assert problem.file == f"{len(names) - 1}.yaml"


# -------------------------------------------------------------------- dagster


@pytest.fixture(scope="module")
def dagster_location(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dagster")
    result = deploy(repo, "dagster", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_definitions_escape_every_mapping_value(dagster_location: Path):
    tree = ast.parse((dagster_location / "definitions.py").read_text())
    descriptions = [
        ast.literal_eval(k.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "LinkEntry"
        for k in node.keywords
        if k.arg == "description"
    ]
    assert HOSTILE in descriptions
    assert not [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Import) and n.names[0].name == "x"
    ]


def load_definitions(location: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "p2pgen_test_definitions", location / "definitions.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def defs(dagster_location: Path) -> Iterator[Any]:
    dg = pytest.importorskip("dagster")
    module = load_definitions(dagster_location)
    dg.Definitions.validate_loadable(module.defs)
    yield module.defs
    for name in list(sys.modules):
        if name.startswith("p2pgen_links."):
            del sys.modules[name]


@pytest.mark.slow
def test_the_code_location_has_an_asset_schedule_and_check_per_link(defs: Any):
    for name in LINKS:
        assets_def = defs.resolve_assets_def(name)
        assert [key.name for key in assets_def.check_keys] == ["no_dead_letters"]
    schedule = defs.resolve_schedule_def("crm_to_mailer_schedule")
    assert schedule.cron_schedule == "*/15 * * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status.value == "RUNNING"
    hourly = defs.resolve_schedule_def("invoices_to_crm_schedule")
    assert hourly.cron_schedule == "0 * * * *"


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from generator.demo.apis import DEMO_CREDENTIALS, DemoApis  # noqa: PLC0415

    for credentials in DEMO_CREDENTIALS.values():
        for var, value in credentials.items():
            monkeypatch.setenv(var, value)
    with DemoApis(ROOT / "specs") as apis:
        yield apis


def materialize(defs: Any, name: str, config: dict[str, str]) -> Any:
    import dagster as dg  # noqa: PLC0415

    with dg.instance_for_test() as instance:
        return dg.materialize(
            [defs.resolve_assets_def(name)],
            run_config={"ops": {name: {"config": config}}},
            instance=instance,
            raise_on_error=False,
        )


@pytest.mark.slow
def test_materializing_a_link_runs_it_against_the_apis(
    defs: Any, demo: Any, tmp_path: Path
):
    result = materialize(
        defs,
        "invoices_to_crm",
        {
            "source_url": demo.base_url("invoicing"),
            "target_url": demo.base_url("crm"),
            "state_dir": str(tmp_path),
        },
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("invoices_to_crm")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    created = demo.records("crm", "customers")
    # an upsert: each customer created once, then updated by its later invoices
    assert metadata["created"] == len(created) > 0
    assert metadata["written"] == metadata["created"] + metadata["updated"]
    assert metadata["failed"] == 0
    assert metadata["exit_code"] == 0
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed
    state = json.loads((tmp_path / "invoices_to_crm.state.json").read_text())
    assert state["last_run"]["written"] == metadata["written"]


@pytest.mark.slow
def test_the_check_fails_when_records_were_dead_lettered(
    defs: Any, demo: Any, tmp_path: Path
):
    # tags_for() is still a stub, so every record is dead-lettered.
    result = materialize(
        defs,
        "crm_to_mailer",
        {
            "source_url": demo.base_url("crm"),
            "target_url": demo.base_url("mailer"),
            "state_dir": str(tmp_path),
        },
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("crm_to_mailer")
    failed = materialization.metadata["failed"].value
    assert failed > 0
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    lines = (tmp_path / "crm_to_mailer.dead-letter.jsonl").read_text().splitlines()
    assert len(lines) == failed


@pytest.mark.slow
def test_a_missing_secret_fails_the_asset_naming_the_variable(
    defs: Any, demo: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("CRM_TOKEN")
    result = materialize(defs, "invoices_to_crm", {"state_dir": str(tmp_path)})
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert "set the environment variable(s): CRM_TOKEN" in str(
        failure.step_failure_data.user_failure_data.description
    )
