"""Server group names and the close codes and reasons a server may send."""

import pytest

from chat.servers import MAX_REASON_BYTES, check_close, server_group_name


@pytest.mark.parametrize(
    ("server_id", "group"),
    [
        ("app1.example.net", "chat.server.app1.example.net"),
        ("  app_2-b  ", "chat.server.app_2-b"),
        ("host with spaces/ü", "chat.server.host_with_spaces__"),
    ],
)
def test_server_group_name_holds_only_valid_characters(server_id, group):
    assert server_group_name(server_id) == group


def test_long_server_ids_are_cut_and_stay_distinct():
    first, second = server_group_name("a" * 200 + "1"), server_group_name("a" * 200 + "2")
    assert len(first) == len(second) == 99
    assert first != second


def test_empty_server_id_is_refused():
    with pytest.raises(ValueError, match="CHAT_SERVER_ID"):
        server_group_name("")


@pytest.mark.parametrize("code", [1000, 1001, 1011, 1012, 1013, 3000, 4999])
def test_sendable_close_codes_pass(code):
    check_close(code, "x" * MAX_REASON_BYTES)
