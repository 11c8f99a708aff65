from tests.support.factory import login


async def test_login_and_inbox(client, factory):
    account = await factory.account()
    user = await factory.user(account)
    inbox = await factory.api_inbox(account)
    await factory.receive(account, inbox, text="Hi there")
    await login(client, user)
    page = await client.get("/conversations?scope=all")
    assert page.status_code == 200
    assert "Hi there" in page.text
