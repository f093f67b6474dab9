"""Class 5 of issue 7 and route coverage: the guard reads each request as MLflow's handler will, on
every registry write route MLflow has, on SQLite and PostgreSQL backends.
"""

import json

import pytest
from flask import Flask

from mlflow_hitl.adapter.guard import KINDS, GuardRefusedError
from mlflow_hitl.adapter.routes import READS, WRITES, RouteTable, registry_request_classes

from .conftest import BACKENDS, GOLD_POLICY, refused

pytestmark = pytest.mark.security
SERVER_BACKENDS = BACKENDS

ALIAS = "api/2.0/mlflow/registered-models/alias"


def test_every_registry_route_of_mlflow_is_classified():
    """MLflow's own endpoint table: every registry handler is a read or a known write, on any prefix."""
    from mlflow.server.handlers import get_endpoints, get_handler

    registry = {get_handler(c): c.__name__ for c in registry_request_classes()}
    assert registry, "no registry routes found"
    assert set(registry.values()) <= READS | set(WRITES), set(registry.values()) - READS - set(WRITES)
    routed = [(path, registry[h]) for path, h, _ in get_endpoints() if h in registry]
    assert {n for _, n in routed} == set(registry.values())  # each handler has a route
    for path, handler, _ in get_endpoints():  # no other route writes the registry under another handler
        if handler not in registry:
            assert not any(
                w in handler.__name__ for w in ("registered_model", "model_version", "_alias", "transition")
            ), path
    # GraphQL mutations are searches only (a registry mutation would need classifying).
    from mlflow.server.graphql.graphql_schema_extensions import schema

    mutations = schema.graphql_schema.mutation_type.fields
    assert all(f.startswith(("mlflowSearch", "test")) for f in mutations), list(mutations)
    for name, make in WRITES.items():
        assert make.__name__ == "<lambda>" and name[0].isupper()
    assert {make(_Message()).kind for make in WRITES.values()} <= set(KINDS)


class _Message:
    """Any request message's fields, empty: enough to build each Write."""

    name = version = alias = stage = key = new_name = "x"
    tags = ()


def test_an_unclassified_registry_route_isrefused():
    """A registry route a newer MLflow adds is refused until it is classified."""
    from mlflow.protos.model_registry_pb2 import GetRegisteredModel
    from mlflow.server.handlers import get_handler

    table = RouteTable()
    app = Flask(__name__)
    with app.test_request_context("/x", method="POST", json={"name": "m"}):
        assert table.write_of(get_handler(GetRegisteredModel)) is None
        table._classes[len] = type("RestoreRegisteredModel", (), {})
        with pytest.raises(GuardRefusedError, match="rule route.unclassified"):
            table.write_of(len)


ROUTES_AROUND = [
    # A JSON string holding the object (MLflow decodes it twice), with decoy query arguments.
    (
        "POST",
        ALIAS + "?name=x&alias=staging&version=1",
        {"data": json.dumps(json.dumps({"alias": "champion"}))},
    ),
    ("POST", "ajax-api/2.0/mlflow/registered-models/alias", {"json": {"alias": "Champion"}}),
    ("POST", "/api/2.0/mlflow//registered-models/alias", {"json": {"alias": "champion"}}),
    ("POST", "api/2.0/mlflow/registered-models/alias/", {"json": {"alias": "CHAMPION"}}),
    ("POST", "api/2.0/mlflow/registered-models/alias", {"json": {"alias": "gold"}}),
    ("POST", "api/2.0/mlflow/registered-models/alias", {"json": {"alias": "champion", "version": " +01"}}),
    ("POST", "api/3.0/mlflow/registered-models/alias", {"json": {"alias": "champion"}}),
    ("POST", "api/2.0/mlflow/registered-models/alias", {"data": "alias=champion", "form": True}),
    ("POST", "api/2.0/mlflow/registered-models/alias", {"data": '{"alias": "champion"', "raw": True}),
    (
        "POST",
        "api/2.0/mlflow/registered-models/alias",
        {"data": json.dumps([{"alias": "champion"}]), "raw": True},
    ),
]


def test_the_guard_reads_every_request_as_mlflow_does(api):
    """Class 5: encodings, prefixes, slashes and case variants never set a protected alias; bad bodies fail closed."""
    name = api.model("eve")
    api.set_policy(name, GOLD_POLICY)
    for user in ("eve", "admin"):
        for method, route, spec in ROUTES_AROUND:
            fields = {"name": name, "version": "1"}
            if "json" in spec:
                kwargs = {"json": {**fields, **spec["json"]}}
            elif spec.get("form"):
                kwargs = {
                    "data": f"name={name}&version=1&{spec['data']}",
                    "headers": {"Content-Type": "application/x-www-form-urlencoded"},
                }
            elif spec.get("raw"):
                kwargs = {"data": spec["data"], "headers": {"Content-Type": "application/json"}}
            else:
                inner = {**fields, **json.loads(json.loads(spec["data"]))}
                kwargs = {
                    "data": json.dumps(json.dumps(inner)),
                    "headers": {"Content-Type": "application/json"},
                }
            response = api.call(method, route, user, allow_redirects=True, **kwargs)
            assert response.status_code != 200, (route, spec, response.text)
        for alias in ("champion", "Champion", "CHAMPION", "gold"):
            assert api.alias_version(name, alias) is None, alias
    # The double-encoded body was read as MLflow reads it: a gate refusal for the champion, one target.
    refusals = api.events("promotion.refused", f"model:{name}")
    assert set(json.loads(p)["target"] for p in refusals["payload"]) == {"alias:champion", "alias:gold"}
    assert set(refusals["actor"]) == {"eve", "admin"}
    assert set(refusals["subject"]) == {f"model:{name}/1"}  # " +01" is version 1, as MLflow reads it
    # A body protobuf cannot parse (MLflow would carry on with the part that parsed) is refused and audited.
    half = api.post(
        "api/2.0/mlflow/model-versions/create",
        {
            "name": name,
            "source": "s3://b/m",
            "tags": [{"key": "hitl.gate.alias.champion", "value": "{}"}, {"key": 5, "value": []}],
        },
    )
    refused(half, "request.unparsable")
    rules = [json.loads(p)["rule"] for p in api.events("guard.refused")["payload"]]
    assert rules.count("request.unparsable") >= 3  # the form, the list, the half-parsed tags
    # The server's own gate records are written, under one name per target.
    assert json.loads(api.tags(name, "1")["hitl.gate.alias.champion"])["passed"] is False
