"""`{expr: ...}`, integer list segments and `$record.`: the allow-list, located type
errors, the compiled code's null semantics, and a generated link that uses them all."""

from __future__ import annotations

import ast
import importlib
import json
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner

from generator import expr
from generator.cli import cli
from generator.errors import Code, Problem
from generator.mapping import Expr, FieldMap, Loc
from generator.models import source_need
from generator.resolve import resolve
from generator.runtime import mapping as rt
from generator.runtime_copy import runtime_names
from tests.runtime_helpers import Loopback, Seen, answer

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "expr"
NAME = "expr_probe"

# ---------------------------------------------------------------- the parser


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("amount_paid / 100", "_calc(_get(src, 'amount_paid'), '/', 100)"),
        ("emails.0.email", "_get(src, 'emails.0.email')"),
        ("$record.created_at", "_get(src, 'created_at')"),
        ("-amount + 1", "_calc(_calc(0, '-', _get(src, 'amount')), '+', 1)"),
        ("-2.5", "-2.5"),
        ("x == null", "_compare(_get(src, 'x'), '==', None)"),
        (
            "x != None and y == true",
            "_compare(_get(src, 'x'), '!=', None) and "
            "_compare(_get(src, 'y'), '==', True)",
        ),
        ("not (a or b)", "not (_get(src, 'a') or _get(src, 'b'))"),
        (
            "a < b <= 3",
            "_compare(_get(src, 'a'), '<', _get(src, 'b')) and "
            "_compare(_get(src, 'b'), '<=', 3)",
        ),
        ("'a' if ok else 'b'", "'a' if _get(src, 'ok') else 'b'"),
        (
            "(a if b else c) if d else e",
            "(_get(src, 'a') if _get(src, 'b') else _get(src, 'c')) if _get(src, 'd') "
            "else _get(src, 'e')",
        ),
        ("x if y else x", "_get(src, 'x')"),
        ("sum(lines, 'price')", "_sum(_get(src, 'lines'), 'price')"),
        ("round(total, 2)", "_round(_get(src, 'total'), 2)"),
        ("lower(strip(email))", "_as_lowercase(_as_strip(_get(src, 'email')))"),
        ("  (a +\n   b)", "_calc(_get(src, 'a'), '+', _get(src, 'b'))"),
        ("date(date)", "_as_date(_get(src, 'date'))"),  # a field named like a function
        ("meta.from.class", "_get(src, 'meta.from.class')"),  # keyword segments
    ],
)
def test_allowed_forms_compile_to_helper_calls(text: str, code: str) -> None:
    assert expr.to_python(expr.parse(text), "src") == code


def test_inside_each_paths_read_the_item_and_record_paths_the_record() -> None:
    tree = expr.parse("quantity * $record.rate")
    assert expr.to_python(tree, "item2") == (
        "_calc(_get(item2, 'quantity'), '*', _get(src, 'rate'))"
    )


HOSTILE = [
    ("__import__('os').system('x')", 1, 0, "expr-function", "unknown function"),
    ("open('/etc/passwd')", 1, 0, "expr-function", "The functions are lower"),
    ("getattr(name, 'upper')", 1, 0, "expr-function", "unknown function 'getattr'"),
    ("().__class__", 1, 0, "expr-syntax", "attribute access is allowed only on source"),
    ("name.upper()", 1, 0, "expr-function", "unknown function 'name.upper'"),
    ("9**9**9", 1, 0, "expr-syntax", "operator '**' is not allowed"),
    ("99999999999999999999", 1, 0, "expr-syntax", "out of range"),
    ("1e999", 1, 0, "expr-syntax", "out of range"),
    ("1j", 1, 0, "expr-syntax", "a complex literal is not allowed"),
    ("b'x'", 1, 0, "expr-syntax", "a bytes literal is not allowed"),
    ("x[0]", 1, 0, "expr-syntax", "indexing with [...]"),
    ("lambda: 1", 1, 0, "expr-syntax", "lambda is not allowed"),
    ("[a for a in b]", 1, 0, "expr-syntax", "a comprehension is not allowed"),
    ("f'{name}'", 1, 0, "expr-syntax", "f-string"),
    ("(y := 1)", 1, 1, "expr-syntax", "':=' is not allowed"),
    ("a in b", 1, 0, "expr-syntax", "'in', 'not in', 'is' and 'is not' are not"),
    ("~a", 1, 0, "expr-syntax", "'~' is not allowed"),
    ("round(x, ndigits=2)", 1, 0, "expr-function", "plain arguments"),
    ("len(a, b)", 1, 0, "expr-function", "len() takes 1 argument"),
    ("coalesce(a)", 1, 0, "expr-function", "coalesce() takes 2 or more arguments"),
    ("sum(lines, price)", 1, 11, "expr-function", "the field is a quoted path"),
    ("lowr(name)", 1, 0, "expr-function", "did you mean 'lower'?"),
    ("sum(coalesce(a, b), 'x')", 1, 4, "expr-function", "the list is a source path"),
    ("1) + (__import__('os')", 1, 6, "expr-function", "unknown function '__import__'"),
    ("a +", 1, 3, "expr-syntax", "invalid syntax"),
    ("a.0b", 1, 2, "expr-syntax", "invalid decimal literal"),
    ("not " * 40 + "x", 1, 132, "expr-syntax", "nests too deeply"),
    ("a + " * 400 + "a", 1, 0, "expr-syntax", "nests too deeply"),
    ("a" * 2001, 1, 0, "expr-syntax", "more than 2000"),
    ("", 1, 0, "expr-syntax", "empty"),
    ("1if x else 2", 1, 0, "expr-syntax", "invalid decimal literal"),
    ("concat(a,\n       lambda: 1)", 2, 7, "expr-syntax", "lambda is not allowed"),
]


@pytest.mark.parametrize(
    ("text", "line", "column", "code", "message"),
    HOSTILE,
    ids=[f"h{i}" for i in range(len(HOSTILE))],
)
def test_what_is_not_allowed_is_refused_where_it_is_written(
    text: str, line: int, column: int, code: str, message: str
) -> None:
    with pytest.raises(expr.ExprError) as caught:
        expr.parse(text)
    error = caught.value
    assert (error.line, error.column, error.code) == (line, column, code), error.message
    assert message in error.message, error.message


@pytest.mark.parametrize(
    "text",
    [
        "concat('\"); import os; (\"', name)",
        "concat(\"'''\", '\\n)\\nimport os\\n(', name)",
        "name == '\\u0441ode' or x.__class__ == 'y'",
        "___ + a.0",
    ],
)
def test_text_reaches_the_code_only_as_escaped_literals(text: str) -> None:
    code = expr.to_python(expr.parse(text), "src")
    tree = ast.parse(code, mode="eval")
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert names <= {"src"} | runtime_names(), names
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert all(
        isinstance(c.func, ast.Name) and c.func.id.startswith("_") for c in calls
    )
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Attribute)]
    assert code.isascii()


def test_token_soup_gives_a_located_error_or_code_that_compiles(
    capsys: pytest.CaptureFixture[str],
) -> None:
    tokens = "a b.c x.0.y $record.z $ 0 1.5 - + * / // % ** ( ) , 's' null true not "
    tokens += (
        "and or if else == < != lower sum round coalesce [ ] { } : . lambda \n \\ "
    )
    tokens += "# f' ' \" é ; = := ~ is in 1e999 0x10 ... yield await"
    words = tokens.split(" ")
    chooser = random.Random(11)
    for _ in range(3000):
        text = "".join(chooser.choice(words) for _ in range(chooser.randint(1, 10)))
        try:
            tree = expr.parse(text)
        except expr.ExprError as error:
            assert 1 <= error.line <= text.count("\n") + 1, text
            continue
        compile(expr.to_python(tree, "src"), "<expr>", "eval")
    assert capsys.readouterr().err == ""  # no SyntaxWarning printed


def test_paths_are_never_attribute_access_on_values() -> None:
    # a path segment named like a Python attribute is still a key of the record
    assert expr.to_python(expr.parse("x.__class__"), "src") == (
        "_get(src, 'x.__class__')"
    )


# ---------------------------------------------------------------- the runtime


def test_arithmetic_with_a_missing_operand_is_null_not_an_error() -> None:
    assert rt._calc(None, "/", 100) is None
    assert rt._calc(250, "/", 100) == 2.5
    assert rt._calc("Ada", "+", " ") == "Ada "
    assert rt._calc(7, "//", 2) == 3 and rt._calc(7, "%", 2) == 1
    with pytest.raises(ZeroDivisionError):  # a data error: the record dead-letters
        rt._calc(1, "/", 0)


def test_comparisons_treat_null_as_a_value_for_equality_only() -> None:
    assert rt._compare(None, "==", None) is True
    assert rt._compare(None, "!=", None) is False
    assert rt._compare(None, "<", 1) is False and rt._compare(None, ">=", 1) is False
    assert rt._compare(1, "==", True) is False  # a boolean equals only a boolean
    assert rt._compare(1, "==", 1.0) is True
    assert rt._compare("b", ">", "a") is True


def test_functions_and_their_null_semantics() -> None:
    assert rt._coalesce(None, None, "x", "y") == "x"
    assert rt._coalesce(None, None) is None
    assert rt._concat("Ada", None, " ", 3, True, 2.0) == "Ada 3true2"
    assert rt._len(None) is None and rt._len([1, 2]) == 2
    assert rt._abs(None) is None and rt._abs(-2) == 2
    assert [rt._round(v) for v in (2.5, -2.5, 0.4, None)] == [3, -3, 0, None]
    assert rt._round(1.005, 2) == 1.01 and rt._round(0.125, 2) == 0.13
    assert rt._round(1e300) == int(1e300)
    assert rt._min(3, None, 1) == 1 and rt._max(None, None) is None
    lines = [{"q": 2}, {"q": None}, {}, {"q": 3}]
    assert rt._sum(lines, "q") == 5 and rt._sum(None, "q") == 0
    assert rt._sum([1.5, None, 2]) == 3.5


def test_get_indexes_lists_and_an_index_out_of_range_is_missing() -> None:
    data = {"emails": [{"email": "a@x"}, {"email": "b@x"}], "map": {"0": "zero"}}
    assert rt._get(data, "emails.0.email") == "a@x"
    assert rt._get(data, "emails.1.email") == "b@x"
    assert rt._get(data, "emails.2.email") is None
    assert rt._get(data, "emails.2.email", default="none") == "none"
    assert rt._get(data, "emails.-1.email") is None  # not an index
    assert rt._get(data, "map.0") == "zero"  # an object's key "0" is a key


# ---------------------------------------------------------------- the checks


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    (tmp_path / "specs" / "links").mkdir(parents=True)
    for name in ("people.yaml", "ledger.yaml"):
        shutil.copy(DATA / name, tmp_path / "specs" / name)
    yield tmp_path
    sys.modules.pop(NAME, None)


def mapping(project: Path, fields: str, source: str = "") -> Path:
    """A people -> ledger link; `fields` lines follow `reference: id` (line 12)."""
    text = f"""\
version: 1
name: {NAME}
source:
  spec: ../people.yaml
  operation: listPeople
  records: data
{source or "  params: {}"}
target:
  spec: ../ledger.yaml
  operation: createEntry
fields:
  reference: id
{fields}"""
    path = project / "specs" / "links" / f"{NAME}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[Problem]:
    return resolve(path, path.parents[2]).errors


CHECKS = [
    (
        '  amount: {expr: "amount_text / 100"}',
        "amount_text",
        Code.TYPE_MISMATCH,
        "expr: 'amount_text' is a string, and / needs numbers; "
        "did you mean float(amount_text)?",
    ),
    (
        '  amount: {expr: "amount_paid / 100 + amount_piad"}',
        "amount_piad",
        Code.SOURCE_FIELD_NOT_FOUND,
        "expr: source field 'amount_piad' not found; did you mean 'amount_paid'?",
    ),
    (
        "  full_name: {expr: \"first_name + ' ' + amount_paid\"}",
        "first_name",
        Code.TYPE_MISMATCH,
        "+ joins two strings or adds two numbers",
    ),
    (
        '  units: {expr: "amount_paid / 100"}',
        "amount_paid",
        Code.TYPE_MISMATCH,
        "the expression gives a number but the target expects an integer; "
        "wrap it in round(...) or int(...)",
    ),
    (
        '  day: {expr: "datetime(created_at)"}',
        "datetime",
        Code.FORMAT_MISMATCH,
        "wrap it in date(...)",
    ),
    (
        '  hash: {expr: "md5(amount_paid)"}',
        "amount_paid",
        Code.TYPE_MISMATCH,
        "md5() needs a string, but 'amount_paid' is an integer; "
        "did you mean md5(str(amount_paid))?",
    ),
    (
        '  vip: {expr: "tier == 1"}',
        "tier",
        Code.TYPE_MISMATCH,
        "'tier' is a string and '1' is an integer; == between them is never true",
    ),
    (
        '  vip: {expr: "concat(name)"}',
        "concat",
        Code.TYPE_MISMATCH,
        "the expression is string but the target expects boolean",
    ),
    (
        "  total_quantity: {expr: \"sum(line_items, 'qty')\"}",
        "'qty'",
        Code.SOURCE_FIELD_NOT_FOUND,
        "item field 'qty' not found",
    ),
    (
        '  total_quantity: {expr: "sum(address)"}',
        "address",
        Code.TYPE_MISMATCH,
        "sum() adds up a list, but 'address' is an object",
    ),
    (
        '  label: {expr: "$record.id"}',
        "$record",
        Code.SOURCE_FIELD_NOT_FOUND,
        "'$record.' reaches the enclosing record from inside `each`",
    ),
    (
        '  label: {expr: "lowr(name)"}',
        "lowr",
        Code.EXPR_FUNCTION,
        "unknown function 'lowr'; did you mean 'lower'?",
    ),
    (
        "  status: {expr: \"'paid' if amount_paid > 0 else 'due'\"}",
        "'due'",
        Code.VALUE_NOT_IN_ENUM,
        "expr: value 'due' is not one of the target's values: 'open', 'paid'",
    ),
    (
        "  email: emails.email",
        "emails",
        Code.SOURCE_FIELD_NOT_FOUND,
        "source field 'email' not found: 'emails' is a list; index it with a whole "
        "number from 0, e.g. 'emails.0.email'",
    ),
    (
        "  email: address.0.city",
        "address",
        Code.SOURCE_FIELD_NOT_FOUND,
        "'address' is not a list (object); only a list can be indexed",
    ),
    (
        "  email: emails.first.email",
        "emails",
        Code.SOURCE_FIELD_NOT_FOUND,
        "'emails' is a list; index it with a whole number from 0, "
        "e.g. 'emails.0.first.email'",
    ),
    (
        "  email: $record.first_name",
        "$record",
        Code.SOURCE_FIELD_NOT_FOUND,
        "write 'first_name' here",
    ),
]


@pytest.mark.parametrize(
    ("line", "at", "code", "message"), CHECKS, ids=[f"c{i}" for i in range(len(CHECKS))]
)
def test_mistakes_are_located_errors_pointing_into_the_expression(
    project: Path, line: str, at: str, code: Code, message: str
) -> None:
    found = problems(mapping(project, line + "\n"))
    assert [(p.code, p.line, p.column) for p in found] == [
        (code, 13, line.index(at) + 1)
    ], found
    assert message in found[0].message, found[0].message


def test_a_multi_line_expression_is_located_on_its_own_line(project: Path) -> None:
    fields = (
        "  full_name:\n"
        "    expr: |\n"
        "      concat(first_name, ' ',\n"
        "             lower(amount_paid))\n"
    )
    found = problems(mapping(project, fields))
    assert [(p.line, p.column) for p in found] == [(16, 20)], found
    assert "lower() needs a string" in found[0].message


def test_a_filter_expression_must_be_true_or_false(project: Path) -> None:
    source = '  filter: {expr: "coalesce(name, nickname)"}'
    found = problems(mapping(project, "", source))
    assert [(p.code, p.line, p.column) for p in found] == [(Code.FILTER_TYPE, 7, 19)]
    assert "a filter must be true or false, but this gives a string" in (
        found[0].message
    )


def test_an_optional_result_for_a_required_field_is_a_warning(project: Path) -> None:
    path = mapping(project, "").read_text(encoding="utf-8")
    path = path.replace("  reference: id", '  reference: {expr: "lower(nickname)"}')
    (project / "specs" / "links" / f"{NAME}.yaml").write_text(path, encoding="utf-8")
    result = resolve(project / "specs" / "links" / f"{NAME}.yaml", project)
    assert not result.errors
    warnings = [p for p in result.problems if p.severity == "warning"]
    assert [(p.code, p.line) for p in warnings] == [(Code.OPTIONAL_TO_REQUIRED, 12)]
    assert "wrap it in coalesce(..., a default)" in warnings[0].message


# ---------------------------------------------------------------- a generated link

LINK_FIELDS = """\
  email: emails.0.email
  full_name: {expr: "coalesce(name, first_name + ' ' + last_name)"}
  amount: {expr: "amount_paid / 100"}
  units: {expr: "round(amount_paid / 100)"}
  total_quantity: {expr: "sum(line_items, 'quantity')"}
  hash: {expr: "md5(lower(strip(emails.0.email)))"}
  day: {expr: "date(created_at)"}
  vip: {expr: "tier == 'gold' or amount_paid >= 100000"}
  label: {expr: "concat(upper(tier), '/', len(line_items), ' ', address.city)"}
  lines:
    each: line_items
    fields:
      sku: catalog_object_id
      sold_at: $record.created_at
      total: {expr: "quantity * price / 100 if quantity != null else 0"}
"""
LINK_FILTER = '  filter: {expr: "amount_paid > 0 and not (tier == null)"}'

PERSON: dict[str, Any] = {
    "id": "p1",
    "name": None,
    "first_name": "Ada",
    "last_name": "Lovelace",
    "emails": [{"email": "  Ada@Example.COM ", "primary": True}, {"email": "b@x"}],
    "amount_paid": 123456,
    "created_at": "2024-03-05T23:30:00-02:00",
    "tier": "gold",
    "address": {"city": "London"},
    "line_items": [
        {"catalog_object_id": "A", "quantity": 2, "price": 250},
        {"catalog_object_id": "B", "price": 100},
    ],
}


@pytest.fixture
def link(project: Path) -> tuple[ModuleType, Path]:
    path = mapping(project, LINK_FIELDS, LINK_FILTER)
    out = project / "out"
    result = CliRunner().invoke(
        cli, ["generate", str(path), "--out", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    sys.path.insert(0, str(out / NAME))
    try:
        return importlib.import_module(NAME), out / NAME
    finally:
        sys.path.remove(str(out / NAME))


def transform(module: ModuleType, raw: dict[str, Any]) -> dict[str, Any]:
    body = module.transform(module.SourceRecord.model_validate(raw))
    dumped: dict[str, Any] = body.model_dump(mode="json", exclude_unset=True)
    return dumped


def test_the_link_transforms_a_real_record(link: tuple[ModuleType, Path]) -> None:
    module, _ = link
    assert transform(module, PERSON) == {
        "reference": "p1",
        "email": "  Ada@Example.COM ",
        "full_name": "Ada Lovelace",
        "amount": 1234.56,
        "units": 1235,
        "total_quantity": 2,
        "hash": "3e3417d7ef77d5932a6734b916515ed5",  # md5("ada@example.com")
        "day": "2024-03-06",
        "vip": True,
        "label": "GOLD/2 London",
        "lines": [
            {"sku": "A", "sold_at": "2024-03-05T23:30:00-02:00", "total": 5.0},
            {"sku": "B", "sold_at": "2024-03-05T23:30:00-02:00", "total": 0},
        ],
    }


def test_missing_values_give_null_and_the_field_is_left_out(
    link: tuple[ModuleType, Path],
) -> None:
    module, _ = link
    raw = {"id": "p2", "amount_paid": 0, "created_at": "2024-01-01T00:00:00Z"}
    assert transform(module, raw) == {
        "reference": "p2",
        "amount": 0.0,
        "units": 0,
        "total_quantity": 0,
        "day": "2024-01-01",
        "vip": False,
        "label": "/ ",
        "lines": [],
    }
    only_name = transform(module, {**raw, "name": "Countess", "emails": []})
    assert only_name["full_name"] == "Countess" and "email" not in only_name


def test_the_source_model_keeps_the_indexed_list_and_its_item_field(
    link: tuple[ModuleType, Path],
) -> None:
    module, _ = link
    record = module.SourceRecord.model_validate(PERSON)
    assert type(record.emails[0]).model_fields.keys() == {"email"}
    with pytest.raises(ValueError, match=r"emails\.0\.email"):
        module.SourceRecord.model_validate({**PERSON, "emails": [{"email": 5}]})


def test_the_filter_expression_runs_over_loopback(
    link: tuple[ModuleType, Path], project: Path
) -> None:
    module, _ = link
    people = [
        PERSON,
        {**PERSON, "id": "p-free", "amount_paid": 0},
        {**PERSON, "id": "p-no-tier", "tier": None},
        {**PERSON, "id": "p-silver", "tier": "silver", "amount_paid": 5},
    ]

    def source(handler: Any, seen: Seen) -> None:
        answer(handler, 200, {"data": people})

    def target(handler: Any, seen: Seen) -> None:
        answer(handler, 201, {})

    with Loopback(source) as crm, Loopback(target) as ledger:
        config = module.Config(
            source_url=crm.url,
            target_url=ledger.url,
            state_path=project / "state.json",
            dead_letter_path=project / "dead.jsonl",
            concurrency=1,
        )
        summary = module.run(config)
    assert (summary.read, summary.written, summary.skipped, summary.failed) == (
        4,
        2,
        2,
        0,
    )
    sent = [json.loads(seen.body) for seen in ledger.seen]
    assert [(b["reference"], b["vip"], b["amount"]) for b in sent] == [
        ("p1", True, 1234.56),
        ("p-silver", False, 0.05),
    ]


@pytest.mark.slow
def test_the_generated_link_is_lint_clean_and_passes_its_own_tests(
    link: tuple[ModuleType, Path],
) -> None:
    _, folder = link
    config = str(ROOT / "pyproject.toml")
    for command in (
        ["black", "--check", "-q", "."],
        ["ruff", "check", "--isolated", "."],
        ["ruff", "check", "--config", config, "."],
        ["mypy", "--strict", f"{NAME}.py"],
        ["pytest", "-q", "-p", "no:cacheprovider", f"test_{NAME}.py"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", *command],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, (command, done.stdout, done.stderr)


def test_the_source_need_follows_indexes_record_paths_and_sums() -> None:
    here = Loc("m.yaml", 1, 1)

    def field(target: str, value: Expr) -> FieldMap:
        return FieldMap(target, value, here)

    lines = Expr(
        "each",
        here,
        path="line_items",
        fields=(
            field("sold_at", Expr("path", here, path="$record.nickname")),
            field("n", Expr("expr", here, tree=expr.parse("quantity + $record.x.y"))),
        ),
    )
    need = source_need(
        (
            field("email", Expr("path", here, path="emails.0.email")),
            field("lines", lines),
            field("q", Expr("expr", here, tree=expr.parse("sum(orders, 'a.b')"))),
        ),
        (),
    )
    assert set(need.props) == {"emails", "line_items", "nickname", "x", "orders"}
    emails = need.props["emails"]
    assert emails.items is not None and set(emails.items.props) == {"email"}
    assert not emails.props  # the index is not a property
    items = need.props["line_items"].items
    assert items is not None and set(items.props) == {"quantity"}
    assert need.props["x"].props["y"].whole
    orders = need.props["orders"].items
    assert orders is not None and orders.props["a"].props["b"].whole


@pytest.mark.parametrize(
    ("value", "column", "message"),
    [
        ("{expr: \"__import__('os').system('touch /tmp/x')\"}", 18, "unknown function"),
        ('{expr: "().__class__.__bases__"}', 18, "attribute access is allowed only"),
        ('{expr: "9**9**9"}', 18, "operator '**' is not allowed"),
        ('{expr: "' + "(" * 40 + "a" + ")" * 40 + ' + x[0]"}', 102, "indexing"),
        ('{expr: "a\\nforged.yaml:1:1: fine"}', 17, "invalid syntax (line 1, column 1"),
    ],
)
def test_generate_refuses_hostile_expressions_and_writes_nothing(
    project: Path, value: str, column: int, message: str
) -> None:
    path = mapping(project, f"  label: {value}\n")
    out = project / "out"
    result = CliRunner().invoke(cli, ["generate", str(path), "--out", str(out)])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert lines[1:] == ["nothing written: fix the problems above"], result.output
    assert f"{NAME}.yaml:13:{column}: fields.label: expr:" in lines[0], lines
    assert message in lines[0] and "Traceback" not in result.output
    assert not out.exists()
