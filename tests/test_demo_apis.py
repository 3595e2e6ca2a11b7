"""The bundled demo APIs, exercised over real loopback HTTP."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30Validator, OAS31Validator

from generator.demo.apis import DEMO_CREDENTIALS, DemoApis
from generator.demo.command import (
    DEFAULT_LINKS,
    ExampleStub,
    example_stubs,
    fill_in_stub,
    run_demo,
    stubs_file,
)
from generator.demo.http import FAULT_KINDS, Faults
from generator.demo.store import load_spec
from generator.regions import edited_outside_regions, regions

SPECS = Path(__file__).resolve().parent.parent / "specs"
GENERATED = SPECS.parent / "generated"
ENV = {k: v for creds in DEMO_CREDENTIALS.values() for k, v in creds.items()}
CRM = {"Authorization": f"Bearer {ENV['CRM_TOKEN']}"}
CAREPOINT = {"Authorization": f"Bearer {ENV['CAREPOINT_TOKEN']}"}
BILLING = {"Authorization": f"Bearer {ENV['BILLING_TOKEN']}"}
MAILER = {"X-API-Key": ENV["MAILER_API_KEY"]}
LEDGER = (ENV["LEDGER_USERNAME"], ENV["LEDGER_PASSWORD"])
MEMBERS = f"/lists/{ENV['MAILER_LIST_ID']}/members"
ADJUSTMENTS = f"/warehouses/{ENV['STOCK_WAREHOUSE_ID']}/adjustments"


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoApis]:
    with DemoApis(SPECS) as apis:
        yield apis


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


def stock_token(http: httpx.Client, demo: DemoApis) -> str:
    response = http.post(
        demo.base_url("inventory") + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": ENV["STOCK_CLIENT_ID"],
            "client_secret": ENV["STOCK_CLIENT_SECRET"],
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"
    return str(response.json()["access_token"])


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [str(r["id"]) for r in records]


# ------------------------------------------------------------ pagination


@pytest.mark.slow
def test_cursor_pagination_walks_every_contact_once(demo: DemoApis, http: httpx.Client):
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 7, "status": "active"}
    while True:
        page = http.get(demo.base_url("crm") + "/contacts", params=params, headers=CRM)
        assert page.status_code == 200, page.text
        seen += ids(page.json()["data"])
        if not page.json()["has_more"]:
            assert page.json()["next_cursor"] is None
            break
        params["cursor"] = page.json()["next_cursor"]
    active = [c for c in demo.records("crm", "contacts") if c["status"] == "active"]
    assert seen == ids(active)
    assert len(set(seen)) == len(seen) == 48


@pytest.mark.slow
def test_cursor_filter_updated_since(demo: DemoApis, http: httpx.Client):
    since = "2024-04-01T00:00:00Z"
    page = http.get(
        demo.base_url("crm") + "/contacts",
        params={"updated_since": since, "limit": 100},
        headers=CRM,
    ).json()
    expected = [c for c in demo.records("crm", "contacts") if c["updated_at"] >= since]
    assert 0 < len(page["data"]) == len(expected) < 60


@pytest.mark.slow
def test_page_pagination_walks_every_invoice_once(demo: DemoApis, http: httpx.Client):
    seen: list[str] = []
    page_number, total_pages = 1, 1
    while page_number <= total_pages:
        page = http.get(
            demo.base_url("invoicing") + "/invoices",
            params={"page": page_number, "per_page": 8},
            auth=LEDGER,
        ).json()
        assert page["page"] == page_number
        total_pages = page["total_pages"]
        seen += ids(page["invoices"])
        page_number += 1
    assert total_pages == 6
    assert seen == ids(demo.records("invoicing", "invoices"))
    assert len(set(seen)) == 45


@pytest.mark.slow
def test_page_pagination_status_filter(demo: DemoApis, http: httpx.Client):
    page = http.get(
        demo.base_url("invoicing") + "/invoices",
        params={"status": "paid", "per_page": 100},
        auth=LEDGER,
    ).json()
    assert {i["status"] for i in page["invoices"]} == {"paid"}
    assert page["total_pages"] == 1


@pytest.mark.slow
def test_offset_pagination_walks_every_sale_once(demo: DemoApis, http: httpx.Client):
    seen: list[str] = []
    offset, total = 0, 1
    while offset < total:
        page = http.get(
            demo.base_url("pos") + "/sales",
            params={"offset": offset, "limit": 13, "api_key": ENV["POS_API_KEY"]},
        ).json()
        total = page["total"]
        seen += ids(page["sales"])
        offset += 13
    assert seen == ids(demo.records("pos", "sales"))
    assert len(set(seen)) == total == 80


@pytest.mark.slow
def test_next_url_pagination_walks_every_treatment_once(
    demo: DemoApis, http: httpx.Client
):
    seen: list[str] = []
    url: str | None = demo.base_url("patients") + "/treatments?limit=9"
    while url:
        assert url.startswith(demo.base_url("patients"))
        page = http.get(url, headers=CAREPOINT).json()
        seen += ids(page["items"])
        url = page["links"]["next"]
    assert seen == ids(demo.records("patients", "treatments"))
    assert len(set(seen)) == 55


# ------------------------------------------------------------------ auth


@pytest.mark.slow
@pytest.mark.parametrize(
    ("api", "method", "path"),
    [
        ("crm", "GET", "/contacts"),
        ("crm", "POST", "/customers"),
        ("mailer", "POST", MEMBERS),
        ("invoicing", "GET", "/invoices"),
        ("pos", "GET", "/sales"),
        ("inventory", "POST", ADJUSTMENTS),
        ("patients", "GET", "/treatments"),
        ("billing", "POST", "/charges"),
    ],
)
def test_no_credentials_is_401(
    demo: DemoApis, http: httpx.Client, api: str, method: str, path: str
):
    response = http.request(method, demo.base_url(api) + path, json={})
    assert response.status_code == 401
    assert response.json()


@pytest.mark.slow
def test_wrong_credentials_are_401(demo: DemoApis, http: httpx.Client):
    wrong = {"Authorization": "Bearer nope"}
    assert (
        http.get(demo.base_url("crm") + "/contacts", headers=wrong).status_code == 401
    )
    assert (
        http.get(
            demo.base_url("invoicing") + "/invoices", auth=("demo", "x")
        ).status_code
        == 401
    )
    sales = http.get(demo.base_url("pos") + "/sales", params={"api_key": "x"})
    assert sales.status_code == 401
    members = http.get(demo.base_url("mailer") + MEMBERS, headers={"X-API-Key": "x"})
    assert members.status_code == 401


# --------------------------------------------------------------- targets


@pytest.mark.slow
def test_billing_rejects_invalid_and_accepts_valid(demo: DemoApis, http: httpx.Client):
    url = demo.base_url("billing") + "/charges"
    bad = {"patient_ref": "MRN-1", "procedure_code": "d1110", "quantity": 0}
    response = http.post(url, json=bad, headers=BILLING)
    assert response.status_code == 400
    message = response.json()["message"]
    assert "service_date" in message and "quantity" in message
    good = {
        "patient_ref": "MRN-1",
        "procedure_code": "D1110",
        "service_date": "2024-02-14",
        "quantity": 1,
        "source_ref": "carepoint:tr_x",
    }
    created = http.post(url, json=good, headers=BILLING)
    assert created.status_code == 201
    assert created.json()["id"] in ids(demo.records("billing", "charges"))


@pytest.mark.slow
def test_mailer_validates_and_rejects_duplicates(demo: DemoApis, http: httpx.Client):
    url = demo.base_url("mailer") + MEMBERS
    bad = {"email_address": "not-an-email", "status": "maybe", "id": 5}
    response = http.post(url, json=bad, headers=MAILER)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in response.json()["errors"]} >= {
        "email_address",
        "status",
    }
    good = {
        "email_address": "Ada@Example.com",
        "status": "subscribed",
        "merge_fields": {"FNAME": "Ada"},
        "signed_up_at": None,
        "vip": True,
    }
    assert http.post(url, json=good, headers=MAILER).status_code == 201
    again = http.post(
        url, json=good | {"email_address": "ada@example.com"}, headers=MAILER
    )
    assert again.status_code == 400
    assert again.json()["title"] == "Member Exists"
    assert (
        http.post(
            demo.base_url("mailer") + "/lists/other1/members", json=good, headers=MAILER
        ).status_code
        == 404
    )


@pytest.mark.slow
def test_crm_rejects_bad_values(demo: DemoApis, http: httpx.Client):
    url = demo.base_url("crm") + "/customers"
    body = {"external_ref": "r1", "name": "Grace", "email": "grace@example.com"}
    for bad in (
        {"lifetime_value_cents": -5},
        {"currency": "JPY"},
        {"last_paid_at": "x"},
    ):
        response = http.post(url, json=body | bad, headers=CRM)
        assert response.status_code == 422, bad
    assert http.post(url, content=b"{not json", headers=CRM).status_code == 400
    assert (
        http.post(url, json=body | {"currency": "GBP"}, headers=CRM).status_code == 201
    )


@pytest.mark.slow
def test_idempotency_key_dedupes(demo: DemoApis, http: httpx.Client):
    url = demo.base_url("billing") + "/charges"
    body = {
        "patient_ref": "MRN-2",
        "procedure_code": "D0120",
        "service_date": "2024-03-01",
        "quantity": 2,
    }
    headers = BILLING | {"Idempotency-Key": "tr_000042"}
    before = len(demo.records("billing", "charges"))
    first = http.post(url, json=body, headers=headers)
    second = http.post(url, json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(demo.records("billing", "charges")) == before + 1
    other = http.post(url, json=body, headers=BILLING | {"Idempotency-Key": "other"})
    assert other.json()["id"] != first.json()["id"]


# ---------------------------------------------------------------- oauth2


@pytest.mark.slow
def test_oauth2_client_credentials(demo: DemoApis, http: httpx.Client):
    url = demo.base_url("inventory")
    token = stock_token(http, demo)
    body = {
        "reference": "sale-1",
        "reason": "sale",
        "lines": [{"sku": "MUG-STONE-01", "delta": -1}],
    }
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "sale_1"}
    created = http.post(url + ADJUSTMENTS, json=body, headers=headers)
    assert created.status_code == 201
    assert created.json()["id"].startswith("adj_")
    bad_client = http.post(
        url + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "x",
            "client_secret": "y",
        },
    )
    assert bad_client.status_code == 401
    assert bad_client.json()["error"] == "invalid_client"
    wrong_grant = http.post(url + "/oauth/token", data={"grant_type": "password"})
    assert wrong_grant.status_code == 400
    basic = http.post(
        url + "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(ENV["STOCK_CLIENT_ID"], ENV["STOCK_CLIENT_SECRET"]),
    )
    assert basic.status_code == 200
    invalid = http.post(url + ADJUSTMENTS, json=body | {"lines": []}, headers=headers)
    assert invalid.status_code == 201  # replayed: the key was already used
    fresh = {"Authorization": f"Bearer {token}"}
    assert (
        http.post(
            url + ADJUSTMENTS, json=body | {"lines": []}, headers=fresh
        ).status_code
        == 422
    )


@pytest.mark.slow
def test_oauth2_token_expires(http: httpx.Client):
    with DemoApis(SPECS, token_ttl=0.2) as demo:
        token = stock_token(http, demo)
        url = demo.base_url("inventory") + ADJUSTMENTS
        headers = {"Authorization": f"Bearer {token}"}
        assert http.get(url, headers=headers).status_code == 200
        time.sleep(0.3)
        assert http.get(url, headers=headers).status_code == 401


# ---------------------------------------------------------------- faults


def test_faults_are_deterministic():
    def draws(seed: int) -> list[str | None]:
        faults = Faults(seed=seed, error_503=0.2, rate_limit_429=0.2, lost_response=0.2)
        return [faults.draw(write=i % 2 == 0) for i in range(50)]

    assert draws(5) == draws(5)
    assert draws(5) != draws(6)
    assert "lost" not in draws(5)[1::2]  # reads never lose a write


@pytest.mark.slow
def test_faults_produce_every_configured_kind(http: httpx.Client):
    faults = Faults(
        seed=11,
        error_503=0.15,
        rate_limit_429=0.15,
        drop_connection=0.15,
        lost_response=0.15,
    )
    outcomes: Counter[str] = Counter()
    with DemoApis(SPECS, faults=faults) as demo:
        url = demo.base_url("billing") + "/charges"
        for i in range(60):
            body = {
                "patient_ref": "MRN-9",
                "procedure_code": "D1110",
                "service_date": "2024-01-05",
                "quantity": 1,
            }
            headers = BILLING | {"Idempotency-Key": f"k{i}"}
            try:
                response = http.post(url, json=body, headers=headers)
            except httpx.TransportError:
                outcomes["no answer"] += 1
                continue
            outcomes[str(response.status_code)] += 1
            if response.status_code == 429:
                assert response.headers["Retry-After"] == "1"
        stored = {c["id"] for c in demo.records("billing", "charges")}
        assert demo.requests_seen("billing") == 60
    injected = faults.injected
    assert set(injected) == set(FAULT_KINDS)
    assert outcomes["503"] == injected["503"]
    assert outcomes["429"] == injected["429"]
    assert outcomes["no answer"] == injected["drop"] + injected["lost"]
    # A lost response still wrote the charge; a dropped request did not.
    assert len(stored) == outcomes["201"] + injected["lost"]


@pytest.mark.slow
def test_invalid_records_break_their_own_schema(http: httpx.Client):
    with DemoApis(SPECS, faults=Faults(seed=3, invalid_records=4)) as demo:
        for api, spec_file, path, key in [
            ("crm", "crm.yaml", "/contacts", "data"),
            ("pos", "pos.yaml", "/sales", "sales"),
            ("patients", "patients.yaml", "/treatments", "items"),
        ]:
            spec = load_spec(SPECS / spec_file)
            page = spec["paths"][path]["get"]["responses"]["200"]["content"]
            schema = page["application/json"]["schema"]["properties"][key]["items"]
            checker = (
                OAS31Validator if spec["openapi"].startswith("3.1") else OAS30Validator
            )
            collection = {"crm": "contacts", "pos": "sales", "patients": "treatments"}
            records = demo.records(api, collection[api])
            broken = [r["id"] for r in records if not checker(schema).is_valid(r)]
            assert broken == demo.invalid_ids(api)
            assert len(broken) == 4
        invoices = demo.records("invoicing", "invoices")
        wrong = [i["id"] for i in invoices if not isinstance(i["amount_cents"], int)]
        assert wrong == demo.invalid_ids("invoicing")
        assert len(wrong) == 4


# ------------------------------------------------------------------ demo


@pytest.mark.slow
def test_run_demo_reports_a_missing_link():
    out = io.StringIO()
    assert run_demo(["no_such_link"], SPECS, out) == 1
    assert "no_such_link" in out.getvalue()
    assert "cannot read the mapping" in out.getvalue()


@pytest.mark.slow
def test_run_demo_generates_and_runs_a_link():
    out = io.StringIO()
    assert run_demo(["treatments_to_billing"], SPECS, out) == 0, out.getvalue()
    report = out.getvalue()
    assert '"read": 55' in report
    assert "billing now holds" in report


EXAMPLE_STUBS = [
    (path.name.removesuffix(".stubs.py"), stub)
    for path in sorted((SPECS / "links").glob("*.stubs.py"))
    for stub in example_stubs(path)
]


def test_every_example_stub_in_the_mappings_has_a_filled_in_body():
    mapped = {
        (path.stem, stub)
        for path in (SPECS / "links").glob("*.yaml")
        for stub in re.findall(r"\{stub: (\w+)\}", path.read_text("utf-8"))
    }
    assert (
        set(EXAMPLE_STUBS)
        == mapped
        == {
            ("crm_to_mailer", "tags_for"),
            ("pos_sales_webhook", "negative_quantity"),
            ("pos_to_inventory", "negative_quantity"),
        }
    )


@pytest.mark.parametrize(("link", "stub"), EXAMPLE_STUBS)
def test_fill_in_stub_writes_the_example_into_the_region_only(link: str, stub: str):
    script = (GENERATED / link / f"{link}.py").read_text(encoding="utf-8")
    example = example_stubs(stubs_file(SPECS / "links" / f"{link}.yaml"))[stub]
    edited, shown = fill_in_stub(script, stub, example)
    before, after = regions(script), regions(edited)
    def_line = before[f"stub {stub}"].splitlines()[0]
    assert after[f"stub {stub}"].splitlines()[0] == def_line
    assert "NotImplementedError" not in after[f"stub {stub}"]
    assert after[f"stub {stub}"].rstrip("\n") == "\n".join(example.lines)
    assert {k: v for k, v in after.items() if k != f"stub {stub}"} == {
        k: v for k, v in before.items() if k != f"stub {stub}"
    }
    # Still the checksum of a file edited only inside its regions, and valid Python.
    assert not edited_outside_regions(edited)
    compile(edited, f"{link}.py", "exec")
    assert shown == [
        f"# p2pgen:begin stub {stub}",
        *example.lines,
        f"# p2pgen:end stub {stub}",
    ]


def _stubs(tmp_path: Path, text: str) -> dict[str, ExampleStub]:
    path = tmp_path / "crm_to_mailer.stubs.py"
    path.write_text(text, encoding="utf-8")
    return example_stubs(path)


def test_fill_in_stub_refuses_a_def_line_that_is_not_the_generated_one(
    tmp_path: Path,
):
    script = (GENERATED / "crm_to_mailer" / "crm_to_mailer.py").read_text("utf-8")
    example = _stubs(
        tmp_path, '"""Doc."""\n\n\ndef tags_for(contact):\n    return []\n'
    )
    with pytest.raises(ValueError) as caught:
        fill_in_stub(script, "tags_for", example["tags_for"])
    assert str(caught.value) == (
        "crm_to_mailer.stubs.py:4: the def line of tags_for() is not the generated "
        "one; make it 'def tags_for(record: SourceRecord) -> list[str]:'"
    )


def test_fill_in_stub_refuses_a_stub_the_script_does_not_have(tmp_path: Path):
    script = (GENERATED / "crm_to_mailer" / "crm_to_mailer.py").read_text("utf-8")
    example = _stubs(tmp_path, "def no_such_stub():\n    return 1\n")
    with pytest.raises(ValueError, match="no region 'stub no_such_stub'"):
        fill_in_stub(script, "no_such_stub", example["no_such_stub"])


def test_example_stubs_names_the_line_of_a_syntax_error(tmp_path: Path):
    with pytest.raises(ValueError) as caught:
        _stubs(tmp_path, "def tags_for(record):\n    return [\n")
    assert str(caught.value).startswith("crm_to_mailer.stubs.py:2: ")


def test_a_link_without_a_stubs_file_has_no_example_stubs(tmp_path: Path):
    assert example_stubs(tmp_path / "no_such.stubs.py") == {}


def _sections(report: str) -> dict[str, str]:
    parts = re.split(r"^== (\w+)", report, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.slow
def test_run_demo_fills_in_stubs_regenerates_and_replays():
    out = io.StringIO()
    # its speed is not asserted here: shared machines are noisy (bench/ measures speed)
    assert run_demo(DEFAULT_LINKS, SPECS, out) == 0, out.getvalue()
    report = out.getvalue()
    sections = _sections(report)
    assert set(sections) == set(DEFAULT_LINKS)
    for link, section in sections.items():
        # The last count of the section is what the target holds at the end.
        held = re.findall(r"now holds (\d+) ", section)
        assert held and int(held[-1]) > 0, (link, section)
    for link, stub, read, held in [
        ("crm_to_mailer", "tags_for", 60, 48),  # 12 archived: deleted, not held
        ("pos_to_inventory", "negative_quantity", 80, 80),
    ]:
        section = sections[link]
        assert f"NotImplementedError: implement {stub}()" in section
        assert f"1 fill in   {stub}() from {link}.stubs.py" in section
        assert f"unchanged {link}/{link}.py" in section
        assert f"{stub}() kept: the region survives" in section
        assert f"--replay {link}.dead.jsonl" in section
        assert f'"read": {read}' in section and f'"written": {read}' in section
        assert f"now holds {held} " in section and f"({held} new)" in section
    assert '"tags": ["tier:' in sections["crm_to_mailer"]
    assert '"delta": -' in sections["pos_to_inventory"]
    assert "refused (exit 1), nothing written" in sections["crm_to_mailer"]
    assert "edited outside the p2pgen:begin/end regions" in report
    # Upserting links run again from scratch: they update, they do not duplicate.
    assert "created 0, updated 48, deleted 12" in sections["crm_to_mailer"]
    assert "created 0, updated 30, deleted 0" in sections["invoices_to_crm"]
    for link in ("crm_to_mailer", "invoices_to_crm"):
        assert re.search(r"now holds \d+ \w+ \(0 new\)\n", sections[link]), link
    assert "rerun" not in sections["pos_to_inventory"]
    # Links without stubs get no loop.
    assert "fill in" not in sections["invoices_to_crm"]
    assert "fill in" not in sections["treatments_to_billing"]


@pytest.mark.slow
def test_generator_commands_do_not_load_the_demo():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, generator.cli; "
            "print(sorted(m for m in sys.modules if m.startswith('generator.demo')))",
        ],
        capture_output=True,
        text=True,
        cwd=SPECS.parent,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
