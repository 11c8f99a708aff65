"""The one visibility rule says the same thing in Python (fan-out) and in SQL (lists)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select

from rapport.domain.accounts.models import Visibility
from rapport.domain.agents.models import Role
from rapport.domain.conversations.models import Conversation
from rapport.domain.conversations.policies import (
    Viewer,
    can_see,
    visibility_kind,
    visibility_params,
    visible_condition,
    visible_filter,
)

viewers = st.builds(
    Viewer,
    user_id=st.integers(1, 3),
    account_id=st.integers(1, 2),
    role=st.sampled_from(list(Role)),
    team_ids=st.frozensets(st.integers(1, 3), max_size=2),
    visibility=st.sampled_from(list(Visibility)),
)
rows = st.lists(
    st.tuples(
        st.integers(1, 2),
        st.one_of(st.none(), st.integers(1, 3)),
        st.one_of(st.none(), st.integers(1, 3)),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(viewer=viewers, conversations=rows)
def test_python_and_sql_agree(viewer, conversations):
    engine = create_engine("sqlite://")
    table = Conversation.__table__
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(
            table.insert(),
            [
                {"id": i, "account_id": a, "assignee_id": u, "team_id": t, "contact_id": 1}
                for i, (a, u, t) in enumerate(conversations, start=1)
            ],
        )
        sql_visible = set(conn.scalars(select(Conversation.id).where(visible_filter(viewer))))
        # The built-once form, its values bound at execution, as the inbox list runs it.
        bound_visible = set(
            conn.scalars(
                select(Conversation.id).where(visible_condition(visibility_kind(viewer))),
                visibility_params(viewer),
            )
        )
    python_visible = {
        i
        for i, (a, u, t) in enumerate(conversations, start=1)
        if can_see(viewer, account_id=a, assignee_id=u, team_id=t)
    }
    assert sql_visible == python_visible == bound_visible
