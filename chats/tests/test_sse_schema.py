"""The OpenAPI schema describes the SSE endpoints' events as what they are."""

from __future__ import annotations

from drf_spectacular.generators import SchemaGenerator


def test_each_sse_event_is_described_with_its_id_event_and_data():
    # It was a plain string, which every event of a live stream broke: schema tools read a
    # text/event-stream schema per event ({id, event, data}), found by the schemathesis run.
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path in (
        "/chat/send",
        "/chat/messages/{message_id}/regenerate",
        "/chat/messages/{message_id}/stream",
    ):
        method = "get" if path.endswith("/stream") else "post"
        content = schema["paths"][path][method]["responses"]["200"]["content"]
        assert list(content) == ["text/event-stream"]
        assert content["text/event-stream"]["schema"] == {"$ref": "#/components/schemas/SseEvent"}
    event = schema["components"]["schemas"]["SseEvent"]
    assert set(event["properties"]) == {"id", "event", "data"}
