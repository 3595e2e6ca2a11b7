"""The intermediate model of one link: everything the templates see, and nothing else."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from generator.kinds.auth import KINDS
from generator.kinds.pagination import MAX_PAGES, STYLES
from generator.mapping import Loc


@dataclass(frozen=True)
class AuthModel:
    """How the script authenticates to one side; secrets come from `env` only."""

    kind: str  # a name in generator.kinds.auth.KINDS
    scheme: str = ""
    location: str = ""  # api_key: header | query | cookie
    param_name: str = ""  # api_key: the header, query or cookie name
    token_url: str = ""  # oauth2 client credentials
    scopes: tuple[str, ...] = ()
    # oauth2 flows: client_secret_basic | client_secret_post | json (auth.token_auth)
    token_auth: str = ""
    env: tuple[
        tuple[str, str], ...
    ] = ()  # (role, ENV_VAR), e.g. ("token", "CRM_TOKEN")
    stub: str = ""  # signed: the script's function that signs each request
    scheme_text: str = (
        ""  # signed: the scheme as the spec describes it, for its docstring
    )

    @property
    def declaration(self) -> tuple[str, dict[str, object]]:
        """The runtime class that authenticates requests, and its keyword arguments."""
        kind = KINDS[self.kind]
        return kind.runtime_class, kind.declaration(dataclasses.asdict(self))


@dataclass(frozen=True)
class Param:
    """A request parameter and the Python expression that produces its value."""

    name: str
    location: str  # path | query | header
    code: str
    uses_record: bool = False  # whether the value comes from the source record


@dataclass(frozen=True)
class ParamPlace:
    """Where a parameter of an operation goes, and its OpenAPI style and explode."""

    name: str
    location: str  # path | query | header | cookie
    style: str = ""  # "": the location's default
    explode: bool | None = None  # None: the style's default


@dataclass(frozen=True)
class Side:
    """One end of the link: the API, its operation and how to call it."""

    title: str
    spec_file: str  # as written relative to the mapping file's repository
    spec_sha256: str
    method: str
    path: str
    operation_id: str
    default_base_url: str
    auth: AuthModel
    params: tuple[Param, ...]
    # the parameters it uses that are not plain query parameters (form style)
    places: tuple[ParamPlace, ...] = ()
    media: str = "application/json"  # its request body's media type
    body_places: tuple[ParamPlace, ...] = ()  # a form body's `encoding` styles


@dataclass(frozen=True)
class PaginationModel:
    style: str  # none | cursor | offset | page | next_url | link_header
    param: str = ""
    next: str = ""
    next_from_last: str = ""
    has_more: str = ""
    limit_param: str = ""
    limit: int | None = None
    start: int = 0
    max_pages: int = MAX_PAGES

    @property
    def declaration(self) -> tuple[str, dict[str, object]]:
        """The runtime class that pages through the source, and its keyword arguments."""
        style = STYLES[self.style]
        return style.runtime_class, style.declaration(dataclasses.asdict(self))


@dataclass(frozen=True)
class StubModel:
    name: str
    target: str  # the target field it fills, for its docstring
    returns: str  # Python annotation of the value to return
    in_each: bool  # takes (record, item) instead of (record)
    sample: Any  # a value of the right shape, for the generated tests
    loc: Loc  # where the mapping names it
    fills: str = "target field"  # what `target` is: a field, or a request parameter


@dataclass(frozen=True)
class WebhookModel:
    """A webhook source: the spec's entry, how deliveries are signed, where the
    record and the event id are in each event."""

    name: str  # the entry of the spec's webhooks
    scheme: str  # standard-webhooks | stripe | hmac-sha256
    secret_env: str
    header: str = ""  # hmac-sha256's header
    tolerance: int = 300
    records: str = ""  # the record's path in the event ("": the event)
    event_id: str = ""  # the event id's path ("": the webhook-id header)
    sample_event: Any = None  # an event holding the sample record, for the tests


@dataclass(frozen=True)
class CallModel:
    """target.match or target.update: another operation of the target API."""

    function: str  # the script's function that builds its parameters
    what: str  # target.match | target.update, for its docstring
    method: str
    path: str
    params: tuple[Param, ...]

    @property
    def query_names(self) -> list[str]:
        """The query parameters it sends, sorted (the generated tests tell calls apart)."""
        return sorted(p.name for p in self.params if p.location == "query")


@dataclass(frozen=True)
class MatchModel:
    """Upsert: the match request, the update (None: on_match skip), on_missing."""

    call: CallModel
    records: str
    update: CallModel | None
    on_missing: str
    sample: Any = None  # a target record the match answer may hold, for the tests


@dataclass(frozen=True)
class BatchModel:
    """target.batch: records per request, where their bodies go, their results."""

    size: int
    path: str
    results: str


@dataclass(frozen=True)
class DeleteModel:
    """target.delete: its request and its conditions, as boolean expressions."""

    call: CallModel
    conditions: tuple[str, ...]


@dataclass(frozen=True)
class LookupModel:
    """One `lookups` entry: its request, and what a record it finds nothing for gets."""

    name: str
    api: str  # source | target
    call: CallModel
    records: str
    on_missing: str
    sample: Any = None  # a record it may find, for the tests


@dataclass(frozen=True)
class Link:
    name: str
    description: str
    generator_version: str
    mapping_file: str
    mapping_sha256: str
    source: Side
    target: Side
    records_path: str
    pagination: PaginationModel
    incremental_param: str
    incremental_field: str
    idempotency_header: str
    idempotency_from: str
    models_code: str
    imports: tuple[str, ...]
    source_record: str  # name of the record model class
    target_body: str  # name of the body model class
    body_code: str  # the dict literal that transform() builds
    target_params: tuple[Param, ...]  # per-record target params (path/query/header)
    stubs: tuple[StubModel, ...]
    env_vars: tuple[str, ...]
    sample_records: tuple[Any, ...]
    expected: tuple[tuple[str, Any], ...]  # target path -> value the sample must give
    distinct_fields: tuple[str, ...]  # source paths made unique per test record
    dependencies: tuple[str, ...]
    filter_conditions: tuple[str, ...] = ()  # source.filter's, as boolean expressions
    filter_stub: str = ""  # or the stub predicate that replaces them
    source_body_code: str = ""  # the dict literal of source.body ("": none)
    webhook: WebhookModel | None = None  # a webhook source instead of a polled one
    target_body_sent: bool = True  # False: the target operation takes no body
    match: MatchModel | None = None
    lookups: tuple[LookupModel, ...] = ()
    batch: BatchModel | None = None
    delete: DeleteModel | None = None

    @property
    def calls(self) -> tuple[CallModel, ...]:
        """The calls besides the write whose parameters the script builds."""
        m = self.match
        calls = [m.call, m.update] if m is not None else []
        calls += [lookup.call for lookup in self.lookups]
        calls += [self.delete.call] if self.delete is not None else []
        return tuple(call for call in calls if call is not None and call.params)

    @property
    def signers(self) -> tuple[tuple[str, tuple[str, ...], AuthModel], ...]:
        """(function, the sides it signs, auth) of each stub that signs requests
        (auth.stub), once per function."""
        sides: dict[str, list[str]] = {}
        auths: dict[str, AuthModel] = {}
        for name, side in (("source", self.source), ("target", self.target)):
            if side.auth.stub:
                sides.setdefault(side.auth.stub, []).append(name)
                auths.setdefault(side.auth.stub, side.auth)
        return tuple((f, tuple(sides[f]), auths[f]) for f in sides)

    @property
    def filter_function(self) -> str:
        """The script's function that says whether a record is sent ("": all are)."""
        return self.filter_stub or ("source_filter" if self.filter_conditions else "")

    @property
    def required_env(self) -> tuple[str, ...]:
        """Every variable the script needs: auth secrets and `{env: ...}` values."""
        return tuple(sorted(set(self.secret_vars) | set(self.env_vars)))

    @property
    def secret_vars(self) -> tuple[str, ...]:
        """The variables that hold secrets: auth's, and a webhook's signing secret."""
        secrets = {
            var for side in (self.source, self.target) for _, var in side.auth.env
        }
        if self.webhook is not None:
            secrets.add(self.webhook.secret_env)
        return tuple(sorted(secrets))
