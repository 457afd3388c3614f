"""Keyword subscriptions and the matching they trigger."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from helpers import import_batch, paper
from kombu.exceptions import OperationalError as BrokerError

from fleetapp import tasks


def test_subscribe_list_unsubscribe(user_client: FlaskClient) -> None:
    first = user_client.post("/api/keywords/subscribe", json={"keyword": "  Machine   Learning "})
    assert first.status_code == 201
    assert first.get_json() == {"keyword": "machine learning", "subscribed": True}
    again = user_client.post("/api/keywords/subscribe", json={"keyword": "machine learning"})
    assert again.status_code == 200
    user_client.post("/api/keywords/subscribe", json={"keyword": "c++"})
    listed = user_client.get("/api/keywords/subscriptions").get_json()
    assert listed == {"keywords": ["c++", "machine learning"]}
    gone = user_client.post("/api/keywords/unsubscribe", json={"keyword": "c++"})
    assert gone.get_json() == {"keyword": "c++", "subscribed": False}
    assert user_client.get("/api/keywords/subscriptions").get_json()["keywords"] == [
        "machine learning"
    ]


def test_unsubscribe_unknown_keyword_is_404(user_client: FlaskClient) -> None:
    response = user_client.post("/api/keywords/unsubscribe", json={"keyword": "never seen"})
    assert response.status_code == 404
    assert response.get_json()["fields"] == {"keyword": "you are not subscribed to it"}


def test_subscription_validation(user_client: FlaskClient, client: FlaskClient) -> None:
    bad = user_client.post("/api/keywords/subscribe", json={"keyword": "semi;colon"})
    assert bad.status_code == 422
    assert "keyword" in bad.get_json()["fields"]
    missing = user_client.post("/api/keywords/subscribe", json={"term": "x"})
    assert missing.get_json()["fields"] == {"keyword": "is required", "term": "unknown field"}
    too_long = user_client.post("/api/keywords/subscribe", json={"keyword": "k" * 65})
    assert too_long.get_json()["fields"] == {"keyword": "must be at most 64 characters"}
    assert client.post("/api/keywords/subscribe", json={"keyword": "x"}).status_code == 401


def test_subscription_limit(user_client: FlaskClient) -> None:
    for number in range(50):
        assert user_client.post(
            "/api/keywords/subscribe", json={"keyword": f"topic {number}"}
        ).status_code == 201
    response = user_client.post("/api/keywords/subscribe", json={"keyword": "one more"})
    assert response.status_code == 422
    assert response.get_json()["fields"] == {"keyword": "at most 50 subscriptions"}


def test_new_keyword_is_matched_against_stored_papers(
    admin_client: FlaskClient,
) -> None:
    import_batch(
        admin_client,
        [
            paper(1, title="Deep learning for compilers", abstract="We tune c++ code."),
            paper(2, title="Detail-oriented storage", abstract="No match for the short term."),
        ],
    )
    admin_client.post("/api/keywords/subscribe", json={"keyword": "c++"})
    admin_client.post("/api/keywords/subscribe", json={"keyword": "ai"})
    by_cpp = admin_client.post("/api/papers/query", json={"keywords": ["c++"]}).get_json()
    assert [p["title"] for p in by_cpp["items"]] == ["Deep learning for compilers"]
    assert by_cpp["items"][0]["keywords"] == ["c++"]
    # "ai" appears only inside "Detail": word boundaries keep it from matching.
    by_ai = admin_client.post("/api/papers/query", json={"keywords": ["ai"]}).get_json()
    assert by_ai["total"] == 0


def test_imported_papers_are_matched_to_existing_keywords(admin_client: FlaskClient) -> None:
    admin_client.post("/api/keywords/subscribe", json={"keyword": "raft"})
    import_batch(admin_client, [paper(1, title="Raft, revisited"), paper(2, title="Other")])
    result = admin_client.post("/api/papers/query", json={"keywords": ["raft"]}).get_json()
    assert [p["title"] for p in result["items"]] == ["Raft, revisited"]


def test_subscription_survives_a_broker_outage(
    user_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broker_down(*_args: object) -> None:
        raise BrokerError("connection refused")

    monkeypatch.setattr(tasks.match_keyword, "delay", broker_down)
    response = user_client.post("/api/keywords/subscribe", json={"keyword": "raft"})
    assert response.status_code == 201
    assert user_client.get("/api/keywords/subscriptions").get_json()["keywords"] == ["raft"]
