"""The check stage for a webhook source: the event its sender posts, where the
record and the event id sit in it, and what the signature scheme needs."""

from __future__ import annotations

from generator.errors import Code, Problem
from generator.mapping import Endpoint
from generator.schemas import Miss, Walker
from generator.specs import Operation, Schema


def webhook_record(
    walker: Walker, source: Endpoint, hook: Operation, problems: list[Problem]
) -> Schema | None:
    """The record's schema: the event (the webhook's request body) or, with
    `records`, the object at that path in it. Problems go to `problems`."""
    event = hook.request_body
    if event is None:
        problems.append(
            source.at("webhook").problem(
                f"source.webhook: webhook {hook.path!r} has no JSON request body, so"
                " there is no event to read; describe it under `requestBody` in"
                f" {hook.doc.path.name}",
                code=Code.NO_RECORDS,
            )
        )
        return None
    _event_id(walker, source, event, problems)
    if not source.records:
        return event
    found = walker.find(event, source.records)
    if isinstance(found, Miss):
        problems.append(
            source.at("records").problem(
                "source.records: "
                + found.describe(f" in the event of webhook {hook.path!r}"),
                code=Code.NO_RECORDS,
            )
        )
        return None
    if "array" in walker.shape(found).types:
        problems.append(
            source.at("records").problem(
                f"source.records: {source.records!r} is a list; a webhook's `records`"
                " names the one record in each event (an object)",
                code=Code.NO_RECORDS,
            )
        )
        return None
    return found


def _event_id(
    walker: Walker, source: Endpoint, event: Schema, problems: list[Problem]
) -> None:
    """`event_id` names a field of the event; without it the scheme must send webhook-id."""
    signature = source.signature
    if source.event_id is None:
        if signature is not None and signature.scheme != "standard-webhooks":
            problems.append(
                source.loc.problem(
                    f"source.event_id: {signature.scheme} deliveries carry no"
                    " webhook-id header; set `event_id:` to the path of the event's"
                    " unique id (e.g. `event_id: id`), which recognises re-deliveries",
                    code=Code.MISSING_KEY,
                )
            )
        return
    found = walker.find(event, source.event_id)
    if isinstance(found, Miss):
        problems.append(
            source.at("event_id").problem(
                "source.event_id: " + found.describe(" in the event"),
                code=Code.SOURCE_FIELD_NOT_FOUND,
            )
        )
        return
    types = walker.shape(found).types - {"null"}
    if types and not types & {"string", "integer"}:
        problems.append(
            source.at("event_id").problem(
                f"source.event_id: {source.event_id!r} is {'/'.join(sorted(types))};"
                " an event id is a string or an integer",
                code=Code.TYPE_MISMATCH,
            )
        )
