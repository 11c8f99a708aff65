"""A session that runs one statement runs it without a transaction around it on PostgreSQL."""

from sqlalchemy import func, select

from rapport.db.engine import one_statement_alone
from rapport.domain.accounts.actions import create_account
from rapport.domain.accounts.models import Account


async def _accounts(services) -> int:
    async with services.read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(Account)) or 0)


async def test_the_statement_commits_by_itself_on_postgresql(services, backend):
    before = await _accounts(services)
    async with services.session() as session:
        await one_statement_alone(session)
        await session.execute(Account.__table__.insert().values(name="Alone", locale="en"))
        # Seen by another connection before this session commits: no BEGIN was sent.
        # SQLite keeps its IMMEDIATE transaction, which serialises writers.
        seen = await _accounts(services)
        assert seen == (before + 1 if backend == "postgres" else before)
        await session.commit()
    assert await _accounts(services) == before + 1


async def test_a_session_already_in_a_transaction_keeps_it(services, backend):
    before = await _accounts(services)
    async with services.session() as session:
        await create_account(session, name="First")
        await session.flush()
        await one_statement_alone(session)  # too late: the transaction has begun
        await session.rollback()
    assert await _accounts(services) == before
