"""Real request shapes: parameter styles, form and multipart bodies, POST search sources.

tests/data/shapes/shapes.yaml is a small API shaped like the real ones: a
Square-like `SearchOrders` (POST, a required JSON body, authorization-code
OAuth2 only, a deepObject `created`, a pipeDelimited query and an array
header), a Stripe-like form-encoded `PostCustomers` and a multipart upload
with a deepObject filter, a path and a cookie parameter. The Prism tests run
the generated scripts with Prism (`prism mock --errors`) as BOTH source and
target: Prism answers 4xx/422 to a request that breaks the spec (its
parameter styles and body media types included), which fails the run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from test_prism import (
    Prism,
    child_env,
    prism_binary,
    start_prism,
    stop_prism,
    violations,
    wait_ready,
)

from generator.cli import cli

DATA = Path(__file__).resolve().parent / "data" / "shapes"
ENV = {"SHOP_TOKEN": "shop-token", "SHOP_LOCATION": "L1", "NOTE_SESSION": "s1"}


def project(root: Path, **mappings: str) -> Path:
    """A folder with the shapes spec and its example links (plus `mappings`)."""
    root.mkdir(exist_ok=True)
    (root / "pyproject.toml").write_text("", encoding="utf-8")
    links = root / "specs" / "links"
    links.mkdir(parents=True)
    shutil.copy(DATA / "shapes.yaml", root / "specs" / "shapes.yaml")
    for mapping in (DATA / "links").glob("*.yaml"):
        shutil.copy(mapping, links / mapping.name)
    for name, text in mappings.items():
        (links / f"{name}.yaml").write_text(text, encoding="utf-8")
    return links


def generate(links: Path, name: str) -> tuple[int, str, Path]:
    out = links.parents[1] / "out"
    result = CliRunner().invoke(
        cli, ["generate", str(links / f"{name}.yaml"), "--out", str(out), "--force"]
    )
    return result.exit_code, result.output, out / name


def link_text(name: str, **replace: str) -> str:
    text = (DATA / "links" / f"{name}.yaml").read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text.replace(f"name: {name}\n", "name: variant\n")


# --- generation-time checks -------------------------------------------------


def test_a_dotted_name_into_an_object_parameter_is_accepted(tmp_path: Path) -> None:
    code, output, folder = generate(project(tmp_path), "orders_to_customers")
    assert code == 0, output
    script = (folder / "orders_to_customers.py").read_text(encoding="utf-8")
    assert 'Incremental("created.gte", "created_at")' in script
    assert '"created": ParamStyle("query", "deepObject", True)' in script
    assert "encode=FormBody(" in script


def test_a_bracketed_name_for_an_object_parameter_names_the_dotted_one(
    tmp_path: Path,
) -> None:
    text = link_text("orders_to_customers", **{"created.gte": "created[gte]"})
    code, output, _ = generate(project(tmp_path, variant=text), "variant")
    assert code == 1
    assert (
        "has no parameter 'created[gte]'; 'created' is an object parameter:" in output
    )
    assert "write 'created.gte'" in output
    assert "did you mean 'created'?" not in output


def test_a_spec_that_names_a_parameter_with_brackets_takes_that_name(
    tmp_path: Path,
) -> None:
    links = project(tmp_path)
    spec = links.parent / "shapes.yaml"
    text = spec.read_text(encoding="utf-8")
    spec.write_text(
        text.replace(
            """        - name: created
          in: query
          style: deepObject
          explode: true
          schema:
            type: object
            properties: {gte: {type: integer}, lte: {type: integer}}""",
            """        - name: created[gte]
          in: query
          schema: {type: integer}""",
        ),
        encoding="utf-8",
    )
    code, output, _ = generate(links, "orders_to_customers")
    assert code == 1 and "the spec names it 'created[gte]': write that" in output
    (links / "fixed.yaml").write_text(
        link_text("orders_to_customers", **{"created.gte": "created[gte]"}),
        encoding="utf-8",
    )
    code, output, _ = generate(links, "fixed")
    assert code == 0, output


def test_a_key_an_object_parameter_does_not_have_is_located(tmp_path: Path) -> None:
    text = link_text("orders_to_customers", **{"created.gte": "created.gt"})
    code, output, _ = generate(project(tmp_path, variant=text), "variant")
    assert code == 1
    assert "variant.yaml:16:12:" in output
    assert "object parameter 'created': 'gt' not found" in output
    assert "did you mean 'gte'?" in output


def test_a_source_that_requires_a_body_needs_source_body(tmp_path: Path) -> None:
    text = link_text("orders_to_notes", **{"  body: {location_ids: [L1]}\n": ""})
    code, output, _ = generate(project(tmp_path, variant=text), "variant")
    assert code == 1
    assert (
        "variant.yaml:4:3: source: POST /v2/orders/search requires a request body"
        in output
    )
    assert "give it as `body:`" in output


def test_a_body_position_is_checked_against_the_request_body(tmp_path: Path) -> None:
    text = link_text(
        "orders_to_customers", **{"param: body.cursor": "param: body.cursr"}
    )
    code, output, _ = generate(project(tmp_path, variant=text), "variant")
    assert code == 1
    assert "pagination.param: request body field 'cursr' not found" in output
    assert "did you mean 'cursor'?" in output


def test_a_path_parameter_from_an_optional_field_warns(tmp_path: Path) -> None:
    code, output, _ = generate(project(tmp_path), "orders_to_notes")
    assert code == 0, output
    assert (
        "orders_to_notes.yaml:14:14: warning: target.params.account: source" in output
    )
    assert "'customer_id' is optional in the source schema" in output


def test_a_plain_source_params_string_naming_a_record_field_warns(
    tmp_path: Path,
) -> None:
    text = link_text(
        "orders_to_notes",
        **{"params: {X-Tags: {const: [notes]}}": "params: {X-Tags: email}"},
    )
    code, output, _ = generate(project(tmp_path, variant=text), "variant")
    assert code == 0, output
    assert (
        "warning: source.params.X-Tags: the plain string 'email' is sent as" in output
    )


def test_the_generated_tests_pass_for_every_shape_and_token_fetching_sources(
    tmp_path: Path,
) -> None:
    """The script's own tests fake the token endpoint for the source side too."""
    client_credentials = link_text(
        "orders_to_notes",
        **{
            "auth: {scheme: squareOauth, env: {token: SHOP_TOKEN}}": "auth: {scheme: clientOauth}"
        },
    )
    refresh = link_text(
        "orders_to_notes",
        **{
            "env: {token: SHOP_TOKEN}": (
                "env: {client_id: SHOP_ID, client_secret: SHOP_SECRET,"
                " refresh_token: SHOP_REFRESH}"
            )
        },
    ).replace("name: variant", "name: refresh")
    links = project(tmp_path, variant=client_credentials, refresh=refresh)
    for name in ("orders_to_customers", "orders_to_notes", "variant", "refresh"):
        code, output, folder = generate(links, name)
        assert code == 0, output
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=folder,
            env=child_env({}),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert run.returncode == 0, run.stdout[-3000:]


# --- against Prism -------------------------------------------------------------


@pytest.fixture(scope="module")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prism]:
    binary = prism_binary()
    if binary is None:
        pytest.skip(
            "Prism is not installed: npm install --prefix .ci/node @stoplight/prism-cli@5"
        )
    server = start_prism(
        binary, str(DATA / "shapes.yaml"), tmp_path_factory.mktemp("p")
    )
    try:
        wait_ready(server)
        yield server
    finally:
        stop_prism(server)


def run_script(
    folder: Path, name: str, prism: Prism, tmp_path: Path
) -> dict[str, object]:
    run = subprocess.run(
        [
            sys.executable,
            str(folder / f"{name}.py"),
            "--source-url",
            prism.url,
            "--target-url",
            prism.url,
            "--state",
            str(tmp_path / f"{name}.state.json"),
            "--dead-letter",
            str(tmp_path / f"{name}.dead.jsonl"),
        ],
        capture_output=True,
        text=True,
        env=child_env(ENV),
        timeout=120,
        check=False,
    )
    summary: dict[str, object] = json.loads(run.stdout.splitlines()[-1])
    assert summary["exit_code"] == 0, f"{summary}\n{run.stderr[-2000:]}"
    return summary


def prism_log_since(prism: Prism, start: int) -> str:
    with prism.log.open("rb") as log:
        log.seek(start)
        return log.read().decode("utf-8", errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["orders_to_customers", "orders_to_notes"])
def test_prism_accepts_every_request_the_scripts_send(
    name: str, prism: Prism, tmp_path: Path
) -> None:
    """Source (POST search, JSON body, deepObject, pipeDelimited, array header) and
    target (form-encoded nested body; multipart, path, deepObject and cookie)."""
    code, output, folder = generate(project(tmp_path), name)
    assert code == 0, output
    start = prism.log.stat().st_size
    first = run_script(folder, name, prism, tmp_path)
    again = run_script(folder, name, prism, tmp_path)  # with the high-water mark
    assert (first["read"], first["written"]) == (2, 2)
    assert (again["read"], again["written"]) == (2, 2)
    log = prism_log_since(prism, start)
    assert violations(log) == []
    assert log.count("The request passed the validation rules") == 6


@pytest.mark.slow
def test_prism_refuses_the_shapes_the_scripts_no_longer_send(prism: Prism) -> None:
    """Negative control: what p2pgen sent before (a deepObject as JSON text, a form
    body as JSON, a search without its body) is refused, so the test above judges."""
    notes = f"{prism.url}/accounts/a/notes"
    cookies = {"Cookie": "session=s"}
    form = {"title": (None, "x"), "amount": (None, "1")}
    as_json = httpx.post(
        notes, params={"filter": '{"email":"x"}'}, headers=cookies, files=form
    )
    assert as_json.status_code == 422
    deep = httpx.post(notes, params={"filter[email]": "x"}, headers=cookies, files=form)
    assert deep.status_code == 201
    customers = f"{prism.url}/v1/customers"
    body = {"email": "x", "metadata": {"order": "1"}}
    assert httpx.post(customers, json=body).status_code == 415
    assert (
        httpx.post(customers, data={"email": "x", "metadata": "{}"}).status_code == 422
    )
    search = httpx.post(
        f"{prism.url}/v2/orders/search",
        headers={"Authorization": "Bearer t", "X-Tags": "a"},
        json={},
    )
    assert search.status_code == 422


SWAGGER2_FORM = """\
swagger: "2.0"
info: {title: Legacy forms, version: "1"}
host: legacy.test
basePath: /api
schemes: [http]
paths:
  /orders:
    get:
      operationId: listOrders
      produces: [application/json]
      responses:
        "200":
          description: orders
          schema:
            type: array
            items:
              type: object
              required: [id, email]
              properties:
                id: {type: string}
                email: {type: string}
                tags: {type: array, items: {type: string}}
  /subscribers:
    post:
      operationId: subscribe
      consumes: [application/x-www-form-urlencoded]
      parameters:
        - {name: email, in: formData, type: string, required: true}
        - {name: tags, in: formData, type: array, items: {type: string}, collectionFormat: multi}
        - {name: ref, in: formData, type: string}
      responses:
        "201": {description: subscribed}
"""


def test_swagger2_form_data_parameters_are_a_form_body(tmp_path: Path) -> None:
    links = project(tmp_path)
    (links.parent / "legacy.yaml").write_text(SWAGGER2_FORM, encoding="utf-8")
    (links / "legacy.yaml").write_text(
        "version: 1\nname: legacy\n"
        "source: {spec: ../legacy.yaml, operation: listOrders}\n"
        "target: {spec: ../legacy.yaml, operation: subscribe}\n"
        "fields: {email: email, tags: tags, ref: id}\n",
        encoding="utf-8",
    )
    code, output, folder = generate(links, "legacy")
    assert code == 0, output
    script = (folder / "legacy.py").read_text(encoding="utf-8")
    assert 'encode=FormBody({"tags": ParamStyle("query", "form", True)})' in script
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=folder,
        env=child_env({}),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:]


def test_a_content_parameter_is_declared_as_json_text(tmp_path: Path) -> None:
    links = project(tmp_path)
    spec = links.parent / "shapes.yaml"
    text = spec.read_text(encoding="utf-8")
    spec.write_text(
        text.replace(
            """      parameters:
        - name: expand""",
            """      parameters:
        - name: q
          in: query
          content:
            application/json:
              schema: {type: object, properties: {email: {type: string}}}
        - name: expand""",
        ),
        encoding="utf-8",
    )
    mapping = link_text(
        "orders_to_customers",
        **{"    expand: {const: [customer]}": "    q.email: email"},
    )
    (links / "variant.yaml").write_text(mapping, encoding="utf-8")
    code, output, folder = generate(links, "variant")
    assert code == 0, output
    script = (folder / "variant.py").read_text(encoding="utf-8")
    assert 'locations={"q": ParamStyle("query", "json")}' in script
