"""Schemathesis over /api/openapi.json: generated calls to every operation, no server error,
and every answer (errors included) has a documented status and matches its documented schema.

The app runs in-process (Schemathesis's ASGI client, with the app's own lifespan) against this
test's database, called with a valid admin token. Each operation gets a bounded number of
generated cases, valid and deliberately invalid ones, half of them aimed at real objects of the
account (so updates, deletes and posts reach the domain, not just the 404 of a random id).
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from rapport.domain import events
from rapport.domain.agents.models import Role
from rapport.domain.segments.actions import create_segment
from rapport.domain.webhooks.actions import create_subscription
from rapport.web.app import create_app
from tests.support.api import api_headers

EXAMPLES_PER_OPERATION = 12


@pytest.fixture
async def seeded(services, factory):
    """An account with one of everything the API's paths can name; ids by parameter name."""
    account = await factory.account("Acme", default_region="ES")
    admin = await factory.user(account, role=Role.admin)
    inbox = await factory.api_inbox(account, outbound_url="https://integration.example/out")
    received = await factory.receive(account, inbox, external_id="cust-9", text="hello")
    async with services.session() as session:
        subscription, _secret = await create_subscription(
            session,
            actor=admin,
            url="https://receiver.example/hook",
            event_types=["message.created"],
            box=services.box,
        )
        segment = await create_segment(
            session,
            account_id=account.id,
            name="Has an external id",
            filters={"conditions": [{"type": "identity", "kind": "external", "op": "has"}]},
        )
        await events.commit(session)
    ids = {
        "conversation_id": received.conversation.id,
        "contact_id": received.conversation.contact_id,
        "webhook_id": subscription.id,
        "segment_id": segment.id,
    }
    return ids, await api_headers(services, admin)


def test_generated_calls_to_every_operation_find_no_server_error(settings_, seeded):
    ids, headers = seeded
    app = create_app(settings_)  # its lifespan builds its own running parts in the ASGI loop
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    failures: list[str] = []
    try:
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 25
        for operation in operations:
            _fuzz(operation, ids, headers, failures)
    finally:
        asgi.shutdown_lifespans()
    assert failures == [], "\n\n".join(failures)


def _fuzz(operation, ids, headers, failures):
    aimed = {name: ids[name] for name in _path_names(operation) if name in ids}
    # Valid requests and deliberately invalid ones (wrong types, missing fields, bad formats).
    strategies = [operation.as_strategy(mode) for mode in GenerationMode]
    if aimed:
        strategies += [
            operation.as_strategy(mode, path_parameters=aimed) for mode in GenerationMode
        ]
    strategy = st.one_of(*strategies)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        response = case.call(headers=headers)
        try:
            case.validate_response(
                response,
                checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
                headers=headers,
            )
        except (AssertionError, BaseExceptionGroup) as exc:  # one failure, or several
            failures.append(f"{operation.label}: {exc}")

    check()


def _path_names(operation):
    return [p.name for p in operation.path_parameters]


@pytest.fixture
def settings_(settings):
    return settings
