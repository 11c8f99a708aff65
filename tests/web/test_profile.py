"""An agent's own profile: name, language and the picture customers see in the website chat."""

from rapport.channels.registry import ADAPTERS
from rapport.domain import events
from rapport.domain.agents.models import User
from rapport.domain.conversations import actions
from rapport.domain.conversations.models import Conversation
from rapport.domain.inboxes.models import Inbox
from tests.support.factory import login
from tests.support.webchat import Visitor, widget_inbox

PICTURE = "https://cdn.example.com/team/ana.png"


async def _user(services, user_id: int) -> User:
    async with services.read_session() as session:
        found = await session.get(User, user_id)
    assert found is not None
    return found


async def test_an_agent_sets_and_removes_their_picture(client, factory, services):
    account = await factory.account()
    agent = await factory.user(account, name="Ana Ruiz")
    csrf = await login(client, agent)
    saved = await client.post(
        "/profile", data={"name": "Ana Ruiz", "avatar_url": f"  {PICTURE} ", "csrf_token": csrf}
    )
    assert saved.status_code == 303
    assert (await _user(services, agent.id)).avatar_url == PICTURE
    page = await client.get("/profile")
    assert f'src="{PICTURE}"' in page.text and f'value="{PICTURE}"' in page.text

    # A form without the field (an older page) leaves the picture as it is.
    await client.post("/profile", data={"name": "Ana R.", "csrf_token": csrf})
    kept = await _user(services, agent.id)
    assert kept.avatar_url == PICTURE and kept.name == "Ana R."

    # Emptied: initials again.
    await client.post("/profile", data={"name": "Ana R.", "avatar_url": "", "csrf_token": csrf})
    assert (await _user(services, agent.id)).avatar_url is None


async def test_a_bad_picture_address_is_refused_and_loses_nothing(client, factory, services):
    account = await factory.account()
    agent = await factory.user(account, name="Ana Ruiz", locale="es")
    csrf = await login(client, agent)
    for bad in (
        "http://cdn.example.com/ana.png",  # mixed content on a customer's https site
        "javascript:alert(1)",
        "https://user:secret@cdn.example.com/ana.png",
        "https://" + "a" * 500 + ".example.com/ana.png",
    ):
        refused = await client.post(
            "/profile",
            data={"name": "Ana María", "locale": "es", "avatar_url": bad, "csrf_token": csrf},
        )
        assert refused.status_code == 422
        assert "la dirección de la foto" in refused.text  # in the agent's language
        assert 'value="Ana María"' in refused.text  # what was typed is still there
        unchanged = await _user(services, agent.id)
        assert unchanged.name == "Ana Ruiz" and unchanged.avatar_url is None


async def test_visitors_see_the_agents_picture_next_to_the_reply(client, factory, services, worker):
    account = await factory.account()
    agent = await factory.user(account, name="Ana Ruiz")
    csrf = await login(client, agent)
    await client.post(
        "/profile", data={"name": "Ana Ruiz", "avatar_url": PICTURE, "csrf_token": csrf}
    )
    inbox = await widget_inbox(services, account)
    visitor = Visitor(client, inbox)
    await visitor.start()
    sent = await visitor.say("Hello?", "client-000001")
    await worker.drain()
    async with services.session() as session:
        conversation = await session.get(Conversation, sent.json()["conversation_id"])
        author = await session.get(User, agent.id)
        box = await session.get(Inbox, inbox.id)
        assert conversation is not None and author is not None
        await actions.send_reply(
            session,
            conversation=conversation,
            author=author,
            reply=actions.Reply(
                content="Hi! I'm here.", private=False, inbox=box, policy=ADAPTERS[1].policy
            ),
        )
        await events.commit(session)
    await worker.drain()
    reply = (await visitor.messages())[-1]
    assert reply["sender"] == {"name": "Ana Ruiz", "avatar_url": PICTURE}
