"""Parameter serialisation against the OpenAPI specification's own style examples.

The table is the one of OpenAPI 3.0.4 / 3.1.1 ("Style Examples"), whose label
rows follow RFC 6570 (`.blue,black,brown` without explode); each cell below is
the text the spec gives for `color` = "blue", ["blue", "black", "brown"] and
{"R": 100, "G": 200, "B": 150}.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest

from generator.runtime.auth import ApiKeyAuth
from generator.runtime.params import (
    FormBody,
    ParamStyle,
    multipart_body,
    path_segment,
    place_params,
)
from generator.runtime.run import Source, source_request

STRING = "blue"
ARRAY = ["blue", "black", "brown"]
OBJECT = {"R": 100, "G": 200, "B": 150}

# (style, explode, string, array, object), as the specification's table writes them
PATH_TABLE = [
    (
        "matrix",
        False,
        ";color=blue",
        ";color=blue,black,brown",
        ";color=R,100,G,200,B,150",
    ),
    (
        "matrix",
        True,
        ";color=blue",
        ";color=blue;color=black;color=brown",
        ";R=100;G=200;B=150",
    ),
    ("label", False, ".blue", ".blue,black,brown", ".R,100,G,200,B,150"),
    ("label", True, ".blue", ".blue.black.brown", ".R=100.G=200.B=150"),
    ("simple", False, "blue", "blue,black,brown", "R,100,G,200,B,150"),
    ("simple", True, "blue", "blue,black,brown", "R=100,G=200,B=150"),
]
QUERY_TABLE = [
    ("form", False, "color=blue", "color=blue,black,brown", "color=R,100,G,200,B,150"),
    (
        "form",
        True,
        "color=blue",
        "color=blue&color=black&color=brown",
        "R=100&G=200&B=150",
    ),
    (
        "spaceDelimited",
        False,
        None,
        "color=blue black brown",
        "color=R 100 G 200 B 150",
    ),
    ("pipeDelimited", False, None, "color=blue|black|brown", "color=R|100|G|200|B|150"),
    ("deepObject", True, None, None, "color[R]=100&color[G]=200&color[B]=150"),
]


def query_text(style: ParamStyle, value: Any) -> str:
    """The query string as a server decodes it (httpx percent-encodes it on the wire)."""
    _, query, _ = place_params("/", {"color": value}, {"color": style})
    url = httpx.Request("GET", "http://api.test/", params=query).url
    return unquote_plus(url.query.decode())


@pytest.mark.parametrize(("style", "explode", "string", "array", "obj"), PATH_TABLE)
def test_path_styles_match_the_specification(
    style: str, explode: bool, string: str, array: str, obj: str
) -> None:
    place = ParamStyle("path", style, explode)
    for value, expected in ((STRING, string), (ARRAY, array), (OBJECT, obj)):
        assert path_segment("color", value, place) == expected
        path, _, _ = place_params("/c/{color}", {"color": value}, {"color": place})
        assert path == f"/c/{expected}"


@pytest.mark.parametrize(("style", "explode", "string", "array", "obj"), QUERY_TABLE)
def test_query_styles_match_the_specification(
    style: str, explode: bool, string: str | None, array: str | None, obj: str
) -> None:
    place = ParamStyle("query", style, explode)
    for value, expected in ((STRING, string), (ARRAY, array), (OBJECT, obj)):
        if expected is not None:
            assert query_text(place, value) == expected


def test_defaults_are_form_exploded_for_query_and_simple_for_path_and_header() -> None:
    assert query_text(ParamStyle(), ARRAY) == "color=blue&color=black&color=brown"
    path, _, headers = place_params(
        "/c/{color}",
        {"color": ARRAY, "X-Color": OBJECT},
        {"color": ParamStyle("path"), "X-Color": ParamStyle("header")},
    )
    assert path == "/c/blue,black,brown"
    assert headers == {"X-Color": "R,100,G,200,B,150"}


def test_cookie_parameters_are_form_style_and_join_one_header() -> None:
    _, _, headers = place_params(
        "/",
        {"color": ARRAY, "session": "a b"},
        {
            "color": ParamStyle("cookie", "form", False),
            "session": ParamStyle("cookie"),
        },
    )
    assert headers == {"Cookie": "color=blue%2Cblack%2Cbrown; session=a%20b"}


def test_a_dotted_name_reaches_into_an_object_parameter() -> None:
    styles = {
        "created": ParamStyle("query", "deepObject", True),
        "filter": ParamStyle("query", "deepObject", True),
    }
    values = {"created.gte": 1700000000, "filter.email": "a@b.test", "limit": 10}
    assert query_text(styles["created"], {"gte": 1}) == "color[gte]=1"
    _, query, _ = place_params("/", values, styles)
    assert query == (
        ("created[gte]", "1700000000"),
        ("filter[email]", "a@b.test"),
        ("limit", "10"),
    )


def test_a_name_the_operation_has_as_it_is_is_sent_as_it_is() -> None:
    _, query, _ = place_params(
        "/", {"created[gte]": 5, "filter.email": "x"}, {"filter.email": ParamStyle()}
    )
    assert query == (("created[gte]", "5"), ("filter.email", "x"))


def test_a_missing_path_value_is_a_clear_error_not_a_type_error() -> None:
    with pytest.raises(ValueError, match="the path parameter 'id' has no value"):
        place_params("/items/{id}", {"id": None}, {"id": ParamStyle("path")})
    with pytest.raises(ValueError, match="would change the request's path"):
        place_params("/items/{id}", {"id": ".."}, {"id": ParamStyle("path")})


def test_a_path_value_is_one_escaped_segment() -> None:
    path, _, _ = place_params(
        "/items/{id}", {"id": "a/b?c"}, {"id": ParamStyle("path")}
    )
    assert path == "/items/a%2Fb%3Fc"


def test_a_form_body_nests_as_stripe_writes_it() -> None:
    payload = {
        "email": "a+b@c.test",
        "metadata": {"order": "42", "note": "x y"},
        "items": [{"price": "price_1", "quantity": 2}],
        "expand": ["customer"],
        "preferred_locales": ["en", "fr"],
        "livemode": False,
    }
    encode = FormBody({"expand": ParamStyle("query", "deepObject", True)})
    request = httpx.Request("POST", "http://api.test/v1/x", **encode(payload))
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    pairs = [
        tuple(unquote_plus(side) for side in pair.split("="))
        for pair in request.content.decode().split("&")
    ]
    assert pairs == [
        ("email", "a+b@c.test"),
        ("metadata[order]", "42"),
        ("metadata[note]", "x y"),
        ("items[0][price]", "price_1"),
        ("items[0][quantity]", "2"),
        ("expand[0]", "customer"),
        ("preferred_locales", "en"),
        ("preferred_locales", "fr"),
        ("livemode", "false"),
    ]


def test_a_multipart_body_has_a_part_per_field_and_json_for_objects() -> None:
    request = httpx.Request(
        "POST",
        "http://api.test/upload",
        **multipart_body({"name": "x", "tags": ["a", "b"], "meta": {"k": 1}}),
    )
    request.read()
    body = request.content.decode()
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert body.count('name="tags"') == 2
    assert 'name="meta"' in body and '{"k": 1}' in body
    assert "filename" not in body


def test_a_form_body_source_keeps_its_header_parameters() -> None:
    """A search source with a form body and a header parameter: both are sent (the
    body's Content-Type joins the parameter headers instead of clashing with them)."""
    source = Source(
        method="POST",
        path="/v1/search",
        default_url="http://api.test",
        params=lambda: {"Stripe-Version": "2024-06-20"},
        locations={"Stripe-Version": ParamStyle("header")},
        body=lambda: {"query": "status:'active'"},
        encode=FormBody(),
    )
    with httpx.Client(base_url="http://api.test") as client:
        request = source_request(client, source, {}, None)
    assert request.headers["Stripe-Version"] == "2024-06-20"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert unquote_plus(request.content.decode()) == "query=status:'active'"


def test_a_content_parameter_is_sent_as_json_text() -> None:
    """`content: {application/json: ...}` instead of a style: the value as JSON."""
    styles = {
        "filter": ParamStyle("query", "json"),
        "X-Meta": ParamStyle("header", "json"),
        "key": ParamStyle("path", "json"),
    }
    path, query, headers = place_params(
        "/k/{key}",
        {"filter.email": "a@b.test", "X-Meta": [1, 2], "key": {"a": 1}},
        styles,
    )
    assert query == (("filter", '{"email":"a@b.test"}'),)
    assert headers == {"X-Meta": "[1,2]"}
    assert path == "/k/%7B%22a%22%3A1%7D"


def test_a_cookie_api_key_joins_the_cookie_parameters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COOKIE_KEY", "k1")
    _, _, headers = place_params(
        "/", {"session": "s1"}, {"session": ParamStyle("cookie")}
    )
    request = httpx.Request("GET", "http://api.test/", headers=headers)
    sent = next(ApiKeyAuth("cookie", "sid", "COOKIE_KEY").auth_flow(request))
    assert sent.headers["Cookie"] == "session=s1; sid=k1"
