"""The runtime every generated script carries, tested once, on a small link.

Each test builds a Link from generator.runtime's own pieces and runs it with
run_link() against in-memory fake APIs (httpx.MockTransport).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from runtime_helpers import (
    SECRETS,
    SOURCE_URL,
    STYLES,
    TARGET_URL,
    TOKEN_PATH,
    Body,
    FakeSource,
    FakeTarget,
    Row,
    command_line,
    dead_letters,
    isolate,
    make_link,
    paginator,
    rows,
    run,
    state,
    with_source,
)

from generator.runtime import http
from generator.runtime.auth import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    ClientCredentialsAuth,
    SignedAuth,
)
from generator.runtime.core import MAX_RETRY_AFTER, FatalError, Summary
from generator.runtime.http import retry_delay  # the real one: tests patch http's
from generator.runtime.mapping import _compact
from generator.runtime.params import multipart_body
from generator.runtime.run import Checkpoint, Incremental, main_link, run_link

PAGED = [style for style in STYLES if style != "none"]


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch)


# --- pagination -----------------------------------------------------------


@pytest.mark.parametrize("count", [5, 6], ids=["short-last-page", "full-last-page"])
@pytest.mark.parametrize("style", STYLES)
def test_every_pagination_style_reads_every_page(
    tmp_path: Path, style: str, count: int
) -> None:
    records = rows(count)
    source, target = FakeSource(records, style), FakeTarget()
    summary = run(tmp_path, make_link(style), source, target, concurrency=3)
    assert (summary.read, summary.written, summary.failed) == (count, count, 0)
    assert sorted(b["ref"] for b in target.bodies) == sorted(r["id"] for r in records)
    urls = [str(r.url) for r in source.requests]
    assert len(set(urls)) == len(urls), "no page is asked for twice"
    if style != "none":
        assert len(urls) >= 3
    assert dead_letters(tmp_path / "dead.jsonl") == []
    saved = state(tmp_path)
    assert "checkpoint" not in saved, "a complete read leaves no checkpoint"
    assert saved["last_run"]["written"] == count


def test_has_more_false_ends_the_pages_even_with_a_next_cursor(tmp_path: Path) -> None:
    def source(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(
            200, json={"data": rows(2), "has_more": False, "next_cursor": "c2"}
        )

    requests: list[httpx.Request] = []
    link = with_source(make_link(), paginator=paginator("cursor", has_more="has_more"))
    summary = run(tmp_path, link, source, FakeTarget())
    assert summary.written == 2 and len(requests) == 1


def test_has_more_with_a_next_cursor_reads_on(tmp_path: Path) -> None:
    link = with_source(make_link(), paginator=paginator("cursor", has_more="has_more"))
    source = FakeSource(rows(5), "cursor", has_more=True)
    summary = run(tmp_path, link, source, FakeTarget())
    assert summary.written == 5 and len(source.requests) == 3


def test_has_more_without_a_cursor_is_fatal_not_a_silent_stop(tmp_path: Path) -> None:
    def source(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"data": rows(2), "has_more": True, "next_cursor": None}
        )

    link = with_source(make_link(), paginator=paginator("cursor", has_more="has_more"))
    with pytest.raises(FatalError, match="gives no new cursor"):
        run(tmp_path, link, source, FakeTarget(), dry_run=True)


def test_a_page_ending_in_a_record_without_a_cursor_is_fatal(tmp_path: Path) -> None:
    first, last = rows(2)
    source = FakeSource([first, {"name": "no id"}, last], "cursor_last")
    with pytest.raises(FatalError, match="to ask for the next page"):
        run(tmp_path, make_link("cursor_last"), source, FakeTarget(), dry_run=True)


def test_max_pages_stops_keeps_the_checkpoint_and_the_next_run_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    link = with_source(make_link(), paginator=paginator("cursor", max_pages=2))
    records, target = rows(7), FakeTarget()
    first = run(tmp_path, link, FakeSource(records), target)
    assert first.written == 4
    assert "stopped after 2 pages (max_pages)" in caplog.text
    assert state(tmp_path)["checkpoint"]["position"] == {"cursor": "c2"}
    # the checkpoint's page was done: the next run asks for it again, skips it all
    later = [run(tmp_path, link, FakeSource(records), target).written for _ in "ab"]
    assert later == [2, 1]
    assert [b["ref"] for b in target.bodies] == [r["id"] for r in records]
    assert "checkpoint" not in state(tmp_path)


def test_a_next_page_link_back_to_a_page_already_read_ends_the_reading(
    tmp_path: Path,
) -> None:
    def source(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        page = int(request.url.params.get("p", "0"))
        back = "/items" if page else "/items?p=2"  # page 2 points back to page 1
        body = {"data": rows(2, page), "links": {"next": back}}
        return httpx.Response(200, json=body)

    requests: list[httpx.Request] = []
    summary = run(tmp_path, make_link("next_url"), source, FakeTarget())
    assert summary.written == 4 and len(requests) == 2
    assert "checkpoint" not in state(tmp_path)


def test_a_cursor_that_does_not_move_ends_the_reading(tmp_path: Path) -> None:
    def source(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        start = 0 if "cursor" not in request.url.params else 2
        return httpx.Response(200, json={"data": rows(2, start), "next_cursor": "c2"})

    requests: list[httpx.Request] = []
    summary = run(tmp_path, make_link("cursor"), source, FakeTarget())
    assert summary.written == 4 and len(requests) == 2


@pytest.mark.parametrize("style", ["next_url", "link_header"])
def test_a_next_page_on_another_origin_is_not_followed(
    tmp_path: Path, style: str
) -> None:
    def source(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        steal = "http://attacker.test/steal"
        if style == "next_url":
            return httpx.Response(200, json={"data": rows(1), "links": {"next": steal}})
        return httpx.Response(
            200, json={"data": rows(1)}, headers={"Link": f'<{steal}>; rel="next"'}
        )

    requests: list[httpx.Request] = []
    with pytest.raises(FatalError, match="not on the source API's origin"):
        run(tmp_path, make_link(style), source, FakeTarget(), dry_run=True)
    assert [r.url.host for r in requests] == ["source.test"], "credentials stay home"


@pytest.mark.parametrize("style", PAGED)
def test_resume_from_the_checkpoint_writes_each_record_once(
    tmp_path: Path, style: str
) -> None:
    records, target, link = rows(7), FakeTarget(), make_link(style)
    first = run(tmp_path, link, FakeSource(records, style), target, limit=3)
    assert first.written == 3
    assert state(tmp_path)["checkpoint"]["done"] == 1, "one record into page 2"
    second = run(tmp_path, link, FakeSource(records, style), target)
    assert second.written == 4
    assert [b["ref"] for b in target.bodies] == [r["id"] for r in records]
    assert "checkpoint" not in state(tmp_path)


def test_the_checkpoint_passes_only_records_done_with_all_before_them(
    tmp_path: Path,
) -> None:
    checkpoint = Checkpoint(tmp_path / "state.json", {})
    for seq in range(3):
        checkpoint.track(seq, {"cursor": "c0"}, seq)
    checkpoint.finish(1)
    checkpoint.finish(2)
    assert "checkpoint" not in checkpoint.state, "record 0 is still in flight"
    checkpoint.finish(0)
    checkpoint.flush()
    assert state(tmp_path)["checkpoint"] == {"position": {"cursor": "c0"}, "done": 3}


# --- retries and dead letters ---------------------------------------------


def test_retry_after_503_and_429_then_written_once_with_one_key(
    tmp_path: Path,
) -> None:
    target = FakeTarget([(503, {}), (429, {"Retry-After": "0"})])
    summary = run(tmp_path, make_link(), FakeSource(rows(1)), target)
    assert (summary.written, summary.failed) == (1, 0)
    assert len(target.requests) == 3 and len(target.bodies) == 1
    keys = {r.headers["Idempotency-Key"] for r in target.requests}
    assert keys == {"test_link:r0"}, "every try of a write carries the same key"


def test_the_wait_before_a_retry_is_the_answer_s_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []

    def recorded(attempt: int, response: httpx.Response | None) -> float:
        waits.append(retry_delay(attempt, response))
        return 0.0

    monkeypatch.setattr(http, "retry_delay", recorded)
    in_a_minute = format_datetime(
        datetime.now(UTC) + timedelta(seconds=60), usegmt=True
    )
    target = FakeTarget(
        [(503, {"Retry-After": "7"}), (429, {"Retry-After": in_a_minute})]
    )
    summary = run(tmp_path, make_link(), FakeSource(rows(1)), target)
    assert summary.written == 1
    assert waits[0] == 7.0 and 55 < waits[1] <= 60


@pytest.mark.parametrize(
    ("header", "low", "high"),
    [("3", 3.0, 3.0), ("99999", MAX_RETRY_AFTER, MAX_RETRY_AFTER), ("soon", 0.0, 2.0)],
    ids=["seconds", "capped", "unreadable-backoff"],
)
def test_retry_delay_reads_retry_after(header: str, low: float, high: float) -> None:
    response = httpx.Response(503, headers={"Retry-After": header})
    assert low <= retry_delay(2, response) <= high


def test_a_write_that_keeps_failing_is_dead_lettered_after_the_retries(
    tmp_path: Path,
) -> None:
    target = FakeTarget([(503, {})] * 10)
    summary = run(tmp_path, make_link(), FakeSource(rows(1)), target, max_retries=2)
    assert (summary.written, summary.failed) == (0, 1)
    (entry,) = dead_letters(tmp_path / "dead.jsonl")
    assert (entry["status"], entry["attempts"]) == (503, 3)


def test_a_rejected_write_goes_to_the_dead_letter_file(tmp_path: Path) -> None:
    records = rows(3)
    summary = run(tmp_path, make_link(), FakeSource(records), FakeTarget([(422, {})]))
    assert (summary.read, summary.written, summary.failed) == (3, 2, 1)
    assert summary.exit_code == 1
    (entry,) = dead_letters(tmp_path / "dead.jsonl")
    assert (entry["stage"], entry["status"], entry["link"]) == (
        "write",
        422,
        "test_link",
    )
    assert entry["record"] == records[0] and "HTTP 422" in entry["reason"]


def test_invalid_source_records_go_to_the_dead_letter_file(tmp_path: Path) -> None:
    # JSON can carry a lone surrogate, which UTF-8 cannot: the entry escapes it
    valid = rows(2)
    records = ["not an object", valid[0], "lone \ud800 surrogate", valid[1]]
    summary = run(tmp_path, make_link(), FakeSource(records), FakeTarget())
    assert (summary.read, summary.written, summary.failed) == (4, 2, 2)
    entries = dead_letters(tmp_path / "dead.jsonl")
    assert [e["record"] for e in entries] == [records[0], records[2]]
    assert {e["stage"] for e in entries} == {"read"}
    assert "validation error" in entries[0]["reason"]


def test_a_record_the_transform_fails_on_is_dead_lettered(tmp_path: Path) -> None:
    records = [{"id": "r0", "name": "unmappable"}, *rows(1, 1)]
    summary = run(tmp_path, make_link(), FakeSource(records), FakeTarget())
    assert (summary.written, summary.failed) == (1, 1)
    (entry,) = dead_letters(tmp_path / "dead.jsonl")
    assert entry["stage"] == "transform"
    assert entry["reason"] == "ValueError: no label for this row"


def test_a_rerun_does_not_dead_letter_a_record_twice(tmp_path: Path) -> None:
    records = rows(2)
    for _ in range(2):  # as after a kill: the same records fail again
        (tmp_path / "state.json").unlink(missing_ok=True)
        summary = run(
            tmp_path, make_link(), FakeSource(records), FakeTarget([(422, {})] * 2)
        )
        assert summary.failed == 2
    assert [e["record"] for e in dead_letters(tmp_path / "dead.jsonl")] == records


def test_a_refused_read_is_fatal(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": "forbidden"})

    target = FakeTarget()
    with pytest.raises(FatalError, match=re.escape('HTTP 403 {"error":"forbidden"}')):
        run(tmp_path, make_link(), refuse, target)
    assert target.requests == []


def test_an_unwritable_dead_letter_file_stops_the_run_before_the_checkpoint(
    tmp_path: Path,
) -> None:
    dead = tmp_path / "no-such-folder" / "dead.jsonl"
    with pytest.raises(FatalError, match="cannot write the dead-letter file"):
        run(
            tmp_path,
            make_link(),
            FakeSource(rows(3)),
            FakeTarget([(422, {})]),
            dead_letter_path=dead,
        )
    saved = state(tmp_path)
    assert "checkpoint" not in saved, "the refused record must be read again"


# --- auth -----------------------------------------------------------------


def oauth_link(token_auth: str = "client_secret_basic") -> Any:
    auth = ClientCredentialsAuth(
        token_url=TOKEN_PATH,
        client_id_env="CLIENT_ID",
        client_secret_env="CLIENT_SECRET",
        scope="write",
        token_auth=token_auth,
    )
    return make_link(target={"auth": auth})


@pytest.mark.parametrize("in_body", [False, True], ids=["basic", "form"])
def test_an_expired_token_is_refreshed_once_and_the_write_retried(
    tmp_path: Path, in_body: bool
) -> None:
    target = FakeTarget([(401, {})])
    token_auth = "client_secret_post" if in_body else "client_secret_basic"
    summary = run(tmp_path, oauth_link(token_auth), FakeSource(rows(2)), target)
    assert (summary.written, summary.failed) == (2, 0)
    assert target.tokens == 2
    assert target.authorizations == ["Bearer token-1"] + ["Bearer token-2"] * 2
    token_request = target.token_requests[0]
    form = dict(httpx.QueryParams(token_request.content.decode()))
    assert form["grant_type"] == "client_credentials" and form["scope"] == "write"
    if in_body:
        assert form["client_id"] == SECRETS["CLIENT_ID"]
        assert "Authorization" not in token_request.headers
    else:
        basic = token_request.headers["Authorization"].removeprefix("Basic ")
        user, password = base64.b64decode(basic).decode().split(":")
        assert (user, password) == (
            SECRETS["CLIENT_ID"],
            quote(SECRETS["CLIENT_SECRET"], safe=""),
        )


def test_token_endpoint_outage_is_retried_and_refused_credentials_are_fatal(
    tmp_path: Path,
) -> None:
    target = FakeTarget()
    target.token_script = [503, 500]
    summary = run(tmp_path, oauth_link(), FakeSource(rows(1)), target)
    assert (summary.written, summary.failed) == (1, 0)
    assert len(target.token_requests) == 3
    target = FakeTarget()
    target.token_script = [401] * 3  # a refusal is for every record
    with pytest.raises(
        FatalError, match="HTTP 401; the client id and secret were sent"
    ):
        run(tmp_path, oauth_link(), FakeSource(rows(2)), target)
    assert target.requests == []
    assert dead_letters(tmp_path / "dead.jsonl") == [], "not the records' fault"


# --- incremental reads ----------------------------------------------------


def incremental_link() -> Any:
    return with_source(
        make_link(), incremental=Incremental("updated_since", "updated_at")
    )


def test_the_high_water_mark_is_the_latest_instant_and_is_sent_next_time(
    tmp_path: Path,
) -> None:
    records = rows(2)
    records[0]["updated_at"] = "2024-01-01T10:00:00+02:00"  # later as text, 08:00Z
    records[1]["updated_at"] = "2024-01-01T09:00:00Z"
    run(tmp_path, incremental_link(), FakeSource(records), FakeTarget())
    assert state(tmp_path)["high_water"] == "2024-01-01T09:00:00Z"
    source = FakeSource([])
    run(tmp_path, incremental_link(), source, FakeTarget())
    assert source.requests[0].url.params["updated_since"] == "2024-01-01T09:00:00Z"


def test_the_high_water_mark_is_capped_at_the_run_start_whatever_the_offset(
    tmp_path: Path,
) -> None:
    # changed during the run, written with another UTC offset: earlier as text, later in time
    in_an_hour = datetime.now(UTC) + timedelta(hours=1)
    records = rows(1)
    records[0]["updated_at"] = in_an_hour.astimezone(
        timezone(timedelta(hours=-5))
    ).isoformat()
    run(tmp_path, incremental_link(), FakeSource(records), FakeTarget())
    saved = state(tmp_path)["high_water"]
    assert datetime.fromisoformat(saved) <= datetime.now(
        UTC
    ), "capped at the run's start"


def test_a_numeric_high_water_mark_is_capped_at_now(tmp_path: Path) -> None:
    records = rows(1)
    records[0]["updated_at"] = int(time.time()) + 3600
    run(tmp_path, incremental_link(), FakeSource(records), FakeTarget())
    assert state(tmp_path)["high_water"] <= time.time()


def test_an_incomplete_read_keeps_the_old_high_water_mark(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(
        json.dumps({"high_water": "2023-01-01T00:00:00Z"})
    )
    run(tmp_path, incremental_link(), FakeSource(rows(5)), FakeTarget(), limit=3)
    assert state(tmp_path)["high_water"] == "2023-01-01T00:00:00Z"


# --- secrets --------------------------------------------------------------


def echo(request: httpx.Request) -> httpx.Response:
    """An API that echoes the request's URL and credentials in its error, as some do."""
    plain = {"host", "accept", "accept-encoding", "connection", "user-agent"}
    plain |= {"content-length", "content-type", "idempotency-key"}
    sent = [value for name, value in request.headers.items() if name not in plain]
    return httpx.Response(400, text=f"bad request: {request.url} {sent}")


def leaked_secrets(text: str) -> list[str]:
    """The test secrets found in text: as set, percent-encoded, or inside a Basic header."""
    for token in re.findall(r"Basic ([A-Za-z0-9+/=]+)", text):
        try:
            text += base64.b64decode(token).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            pass
    forms = (lambda s: s, lambda s: quote(s, safe=""), quote_plus)
    return [s for s in SECRETS.values() if any(form(s) in text for form in forms)]


def test_secrets_stay_out_of_logs_errors_and_dead_letters(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_in_query = ApiKeyAuth(location="query", name="key", key_env="SOURCE_KEY")
    basic = BasicAuth(username_env="TARGET_USER", password_env="TARGET_PASSWORD")
    key_in_header = ApiKeyAuth(location="header", name="X-Key", key_env="TARGET_KEY")
    bearer = BearerAuth(token_env="SOURCE_TOKEN")
    errors = []
    with caplog.at_level(logging.DEBUG):
        for target_auth in (basic, key_in_header):
            link = make_link(
                source={"auth": key_in_query}, target={"auth": target_auth}
            )
            summary = run(tmp_path, link, FakeSource(rows(2)), FakeTarget(reply=echo))
            assert summary.failed == 2
            (tmp_path / "state.json").unlink()
        for source_auth in (key_in_query, bearer):
            with pytest.raises(FatalError) as refused:
                run(
                    tmp_path,
                    make_link(source={"auth": source_auth}),
                    echo,
                    FakeTarget(),
                )
            errors.append(str(refused.value))
    written = (tmp_path / "dead.jsonl").read_text() + caplog.text + "".join(errors)
    assert written.count("bad request") >= 6
    assert leaked_secrets(written) == []


def test_dry_run_sends_nothing_and_writes_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = FakeTarget()
    records = ["not an object", *rows(2)]
    summary = run(tmp_path, make_link(), FakeSource(records), target, dry_run=True)
    assert (summary.read, summary.skipped, summary.failed) == (3, 2, 1)
    assert target.requests == []
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == [
        {"would_send": {"ref": "r0", "label": "ROW 0"}},
        {"would_send": {"ref": "r1", "label": "ROW 1"}},
    ]
    assert list(tmp_path.iterdir()) == [], "no state, dead-letter or lock file"


# --- replay and state files -----------------------------------------------


def test_replay_sends_dead_letters_again_and_stops_on_a_damaged_line(
    tmp_path: Path,
) -> None:
    records = rows(2)
    dead = tmp_path / "failed.jsonl"
    dead.write_text(
        "".join(json.dumps({"stage": "write", "record": r}) + "\n" for r in records)
    )
    target = FakeTarget()
    summary = run(tmp_path, make_link(), FakeSource([]), target, replay_path=dead)
    assert summary.written == 2
    assert [b["ref"] for b in target.bodies] == ["r0", "r1"]
    assert "checkpoint" not in state(tmp_path), "a replay moves no checkpoint"
    dead.write_text(dead.read_text() + "{not json\n")
    target = FakeTarget()
    with pytest.raises(FatalError, match=r"failed.jsonl:3: not a dead-letter entry"):
        run(tmp_path, make_link(), FakeSource([]), target, replay_path=dead)
    assert target.requests == [], "a damaged file is refused before anything is sent"
    dead.write_bytes(b'{"record": "caf\\u00e9"}\n{"record": "caf\xe9"}\n')  # not UTF-8
    with pytest.raises(FatalError, match=r"failed.jsonl:2: not a dead-letter entry"):
        run(tmp_path, make_link(), FakeSource([]), target, replay_path=dead)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            {"link": "another_link"},
            "belongs to the link 'another_link', not 'test_link'",
        ),
        ({"checkpoint": {"position": {}, "done": -1}}, "has a damaged checkpoint"),
        ([], "is not a JSON object"),
        ("{not json", "is not valid JSON"),
    ],
    ids=["another-link", "damaged-checkpoint", "not-an-object", "not-json"],
)
def test_a_state_file_that_is_not_this_link_s_is_refused(
    tmp_path: Path, content: Any, problem: str
) -> None:
    text = content if isinstance(content, str) else json.dumps(content)
    (tmp_path / "state.json").write_text(text)
    target = FakeTarget()
    with pytest.raises(FatalError, match=re.escape(problem)):
        run(tmp_path, make_link(), FakeSource(rows(1)), target)
    assert target.requests == []
    assert (tmp_path / "state.json").read_text() == text


# --- hooks and the command line -------------------------------------------


def test_before_send_changes_the_body_and_can_dead_letter_a_record(
    tmp_path: Path,
) -> None:
    def before_send(record: Row, body: Body) -> Body:
        if record.id == "r1":
            raise ValueError("r1 is not sent")
        return body.model_copy(update={"label": f"{body.label}!"})

    target = FakeTarget()
    link = make_link(before_send=before_send)
    summary = run(tmp_path, link, FakeSource(rows(3)), target)
    assert [b["label"] for b in target.bodies] == ["ROW 0!", "ROW 2!"]
    assert summary.failed == 1
    (entry,) = dead_letters(tmp_path / "dead.jsonl")
    assert (entry["stage"], entry["reason"]) == (
        "transform",
        "ValueError: r1 is not sent",
    )


def test_after_run_gets_the_counts_of_a_run_that_ends(tmp_path: Path) -> None:
    seen: list[Summary] = []
    link = make_link(after_run=seen.append)
    summary = run(tmp_path, link, FakeSource(rows(2)), FakeTarget([(422, {})]))
    assert seen == [summary] and (summary.written, summary.failed) == (1, 1)
    with pytest.raises(FatalError):
        run(tmp_path, link, lambda r: httpx.Response(500), FakeTarget(), max_retries=0)
    assert seen == [summary], "not called after a fatal error"


@pytest.fixture
def cli() -> Iterator[None]:
    with command_line():
        yield


def main(
    tmp_path: Path,
    link: Any,
    source: Any,
    target: Any,
    capsys: pytest.CaptureFixture[str],
    *args: str,
) -> tuple[int, dict[str, Any], str]:
    """Run main_link over the fakes; its exit code, JSON summary line and stderr."""

    def run_with_fakes(settings: Any, summary: Summary) -> Summary:
        assert (settings.source_url, settings.target_url) == (SOURCE_URL, TARGET_URL)
        transports = httpx.MockTransport(source), httpx.MockTransport(target)
        return run_link(link, settings, *transports, summary=summary)

    argv = [
        "--state",
        str(tmp_path / "state.json"),
        "--dead-letter",
        str(tmp_path / "dead.jsonl"),
        *args,
    ]
    code = main_link(link, argv, "test link", run=run_with_fakes)
    out, err = capsys.readouterr()
    return code, json.loads(out.splitlines()[-1]), err


@pytest.mark.usefixtures("cli")
def test_main_exits_0_1_or_2_and_prints_a_json_summary_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = make_link()
    code, summary, _ = main(tmp_path, link, FakeSource(rows(2)), FakeTarget(), capsys)
    assert code == 0
    assert {
        k: summary[k] for k in ("link", "read", "written", "failed", "exit_code")
    } == {"link": "test_link", "read": 2, "written": 2, "failed": 0, "exit_code": 0}
    assert summary["started"] and summary["finished"]
    code, summary, _ = main(
        tmp_path, link, FakeSource(rows(2)), FakeTarget([(422, {})]), capsys
    )
    assert (code, summary["exit_code"], summary["failed"]) == (1, 1, 1)
    refuse = lambda r: httpx.Response(403)  # noqa: E731
    code, summary, err = main(tmp_path, link, refuse, FakeTarget(), capsys)
    assert (code, summary["exit_code"]) == (2, 2)
    assert "HTTP 403" in summary["error"] and "Traceback" not in err
    assert state(tmp_path)["last_run"]["exit_code"] == 2, "a fatal run is recorded"


@pytest.mark.usefixtures("cli")
def test_main_names_missing_environment_variables_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = make_link(required_env=("SOURCE_TOKEN", "P2PGEN_TEST_UNSET"))
    target = FakeTarget()
    code, summary, err = main(tmp_path, link, FakeSource(rows(1)), target, capsys)
    assert code == 2 and target.requests == []
    assert summary["error"] == "set the environment variable(s): P2PGEN_TEST_UNSET"
    assert "P2PGEN_TEST_UNSET" in err


@pytest.mark.usefixtures("cli")
def test_main_logs_json_lines_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = FakeTarget([(422, {})])
    code, _, err = main(
        tmp_path,
        make_link(),
        FakeSource(rows(1)),
        target,
        capsys,
        "--log-format",
        "json",
    )
    assert code == 1
    entries = [json.loads(line) for line in err.splitlines()]
    assert any(
        e["level"] == "warning" and "dead-letter" in e["message"] for e in entries
    )


def test_an_object_whose_mapped_fields_are_all_missing_is_left_out() -> None:
    """WireMock's request.basicAuthCredentials requires username and password:
    a record without credentials must not send `basicAuthCredentials: {}`."""
    body = {
        "url": "/x",
        "basicAuthCredentials": {"username": None, "password": None},
        "metadata": {},  # an empty object the mapping writes is kept
        "tags": [None, {"a": None}],
    }
    assert _compact(body) == {"url": "/x", "metadata": {}, "tags": [None, {}]}


def test_a_source_that_takes_a_multipart_body_reads_every_page(tmp_path: Path) -> None:
    """EVE Marketer's GET /marketstat/json takes its type ids as multipart form
    data: a streamed body, read before its bytes tell one page from another."""
    link = make_link(
        source={"body": lambda: {"typeid": [34, 35]}, "encode": multipart_body}
    )
    source, target = FakeSource(rows(5)), FakeTarget()
    summary = run(tmp_path, link, source, target)
    assert (summary.read, summary.written, summary.failed) == (5, 5, 0)
    assert all(b"text/plain\r\n\r\n35\r\n" in r.content for r in source.requests)


def sign_with_hmac(request: httpx.Request, secret: str) -> None:
    """A signing stub as a developer writes one: an HMAC of the path, PAYONE-like."""
    digest = hmac.new(secret.encode(), request.url.raw_path, hashlib.sha256)
    request.headers["Authorization"] = f"payone-hmac-sha256 {digest.hexdigest()}"


def test_a_signing_stub_signs_every_request_and_its_secret_is_redacted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """auth.stub: the runtime hands each request to the link's own function with the
    secret from the environment; the secret is redacted like any other."""
    source_auth = SignedAuth(sign=sign_with_hmac, secret_env="SOURCE_TOKEN")
    target_auth = SignedAuth(sign=sign_with_hmac, secret_env="TARGET_KEY")
    link = make_link(source={"auth": source_auth}, target={"auth": target_auth})
    source, target = FakeSource(rows(5)), FakeTarget()
    summary = run(tmp_path, link, source, target)
    assert (summary.read, summary.written) == (5, 5)
    for requests, var in (
        (source.requests, "SOURCE_TOKEN"),
        (target.requests, "TARGET_KEY"),
    ):
        assert requests
        for request in requests:
            expected = hmac.new(
                SECRETS[var].encode(), request.url.raw_path, hashlib.sha256
            ).hexdigest()
            assert request.headers["Authorization"] == f"payone-hmac-sha256 {expected}"

    def leaky(request: httpx.Request, secret: str) -> None:
        raise ValueError(f"cannot sign with {secret}")

    link = make_link(source={"auth": SignedAuth(sign=leaky, secret_env="SOURCE_TOKEN")})
    with caplog.at_level(logging.DEBUG), pytest.raises(Exception) as failed:
        run(tmp_path, link, FakeSource(rows(1)), FakeTarget())
    assert leaked_secrets(caplog.text + (tmp_path / "state.json").read_text()) == []
    assert "cannot sign" in str(failed.value)


def test_an_unwritten_signing_stub_stops_the_run_naming_what_to_write(
    tmp_path: Path,
) -> None:
    def sign_source_request(request: httpx.Request, secret: str) -> None:
        raise NotImplementedError("implement sign_source_request() in link.py")

    auth = SignedAuth(sign=sign_source_request, secret_env="SOURCE_TOKEN")
    source = FakeSource(rows(2))
    with pytest.raises(FatalError, match=r"implement sign_source_request\(\)"):
        run(tmp_path, make_link(source={"auth": auth}), source, FakeTarget())
