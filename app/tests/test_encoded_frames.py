"""A room broadcast is encoded once per process, not once per member (chat.consumers)."""

import json

import pytest

from chat.consumers import EncodedFrames, encode_frame, encoded_frames
from tests.helpers import TIMEOUT, join

FRAME = {
    "type": "chat.message",
    "id": 7,
    "author": "zoë",
    "text": "héllo \u2603",
    "sent_at": "2026-12-01T22:00:00.000000Z",
}


def test_the_text_is_the_compact_json_of_the_frame_keys_in_order():
    frames = EncodedFrames(4)
    text = frames.text({**FRAME, "extra": "not sent"})
    assert text == encode_frame(FRAME)
    assert list(json.loads(text)) == ["type", "id", "author", "text", "sent_at"]
    assert "zoë" in text  # non-ASCII kept as is


def test_the_same_content_is_encoded_once_and_a_changed_one_again():
    frames = EncodedFrames(4)
    first = frames.text(dict(FRAME))
    assert frames.text(dict(FRAME)) is first
    assert frames.encoded == 1
    edited = frames.text({**FRAME, "text": "edited"})
    assert json.loads(edited)["text"] == "edited"
    assert frames.encoded == 2


def test_only_the_newest_frames_are_kept():
    frames = EncodedFrames(2)
    for n in range(3):
        frames.text({**FRAME, "id": n})
    frames.text({**FRAME, "id": 2})
    frames.text({**FRAME, "id": 1})
    assert frames.encoded == 3  # ids 1 and 2 still kept
    frames.text({**FRAME, "id": 0})
    assert frames.encoded == 4  # id 0 was dropped


def test_a_missing_key_is_an_error():
    with pytest.raises(KeyError):
        EncodedFrames(2).text({"type": "chat.message", "id": 1})


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_broadcast_to_three_members_is_encoded_once(alice_cookie, bob_cookie):
    clients = [await join("lobby", cookie) for cookie in (alice_cookie, bob_cookie, bob_cookie)]
    try:
        before = encoded_frames.encoded
        await clients[0].send_json_to({"type": "chat.message", "text": "to all three"})
        received = [await client.receive_from(timeout=TIMEOUT) for client in clients]
        assert len(set(received)) == 1
        assert json.loads(received[0])["text"] == "to all three"
        assert encoded_frames.encoded == before + 1
    finally:
        for client in clients:
            await client.disconnect()
