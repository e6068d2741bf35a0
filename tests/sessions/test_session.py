"""The Session object: fresh state per conversation, and its record of handled events."""

from __future__ import annotations

from bottender.sessions.session import HANDLED_LIMIT, HANDLED_TTL_SECONDS, Session


def test_a_new_session_never_aliases_initial_state() -> None:
    initial = {"count": 0, "profile": {"tags": []}}
    session = Session.new("telegram:1", initial)
    session.state["profile"]["tags"].append("x")
    assert initial == {"count": 0, "profile": {"tags": []}}


def test_expiry_is_measured_from_last_activity_in_minutes() -> None:
    session = Session("line:U1", last_activity=1000.0)
    assert not session.is_expired(1000.0 + 30, 0.5)
    assert session.is_expired(1000.0 + 31, 0.5)
    assert not session.is_expired(1e12, None)
    assert not Session("line:U2").is_expired(1e12, 0.5)


def test_handled_events_survive_the_round_trip_through_plain_data() -> None:
    session = Session("telegram:1")
    session.record_handled("telegram:10", now=5.0)
    copy = Session.from_dict(session.to_dict())
    assert copy.has_handled("telegram:10")
    assert not copy.has_handled("telegram:11")


def test_handled_events_are_bounded_in_number_oldest_forgotten_first() -> None:
    session = Session("telegram:1")
    for n in range(HANDLED_LIMIT + 5):
        session.record_handled(f"telegram:{n}", now=float(n))
    assert len(session.handled) == HANDLED_LIMIT
    assert not session.has_handled("telegram:4")
    assert session.has_handled("telegram:5")
    assert session.has_handled(f"telegram:{HANDLED_LIMIT + 4}")


def test_handled_events_are_forgotten_after_a_day() -> None:
    session = Session("line:U1")
    session.record_handled("line:a", now=0.0)
    session.record_handled("line:b", now=HANDLED_TTL_SECONDS - 1)
    session.record_handled("line:c", now=HANDLED_TTL_SECONDS + 1)
    assert sorted(session.handled) == ["line:b", "line:c"]
