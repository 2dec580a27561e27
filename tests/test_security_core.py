"""The security battery's pure core: the variants it derives and the words of its verdicts."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.protocol import SERVER, Protocol

from pytest_wsconn.closecodes import Outcome
from pytest_wsconn.config import parse_health_url
from pytest_wsconn.exceptions import ConfigError
from pytest_wsconn.expect import CloseInfo, ConnectionAttempt
from pytest_wsconn.fuzz_strategies import frame_sequences
from pytest_wsconn.fuzzing import FuzzFrame, describe, fragments, serialize
from pytest_wsconn.security import (
    ABUSES,
    AUTH_BYPASS,
    CREDENTIAL_VARIANTS,
    ORIGIN_IDS,
    abuse,
    bypass_message,
    change_char,
    credential_variant,
    got_through,
    origin_variant,
    over_capacity_verdict,
    reflected_in,
)

TOKENS = st.text(min_size=1, max_size=80)


class TestCredentialVariants:
    @given(TOKENS)
    def test_every_variant_differs_from_the_token_or_is_not_applicable(self, token: str) -> None:
        """No variant that changes the token can ever send the valid token itself."""
        for variant in CREDENTIAL_VARIANTS:
            sent = variant.make(token)
            if variant.place is None and sent is not None:
                assert sent != token, variant.id

    @given(TOKENS)
    def test_truncations_are_proper_non_empty_prefixes(self, token: str) -> None:
        """Each truncation is a prefix of the token, shorter than it, never empty."""
        for name in ("truncated-by-one", "truncated-to-half", "truncated-to-one"):
            sent = credential_variant(name).make(token)
            assert sent is None or (0 < len(sent) < len(token) and token.startswith(sent))

    @given(TOKENS, st.data())
    def test_a_changed_character_is_the_only_difference(
        self, token: str, data: st.DataObject
    ) -> None:
        """``change_char`` changes exactly the character at the index."""
        index = data.draw(st.integers(0, len(token) - 1))
        changed = change_char(token, index)
        assert [i for i, (a, b) in enumerate(zip(token, changed, strict=True)) if a != b] == [index]

    @pytest.mark.parametrize("size", [1, 2, 16, 32, 33])
    def test_a_changed_last_character_changes_the_decoded_bytes(self, size: int) -> None:
        """Changing a base64url signature's last character never decodes to the same bytes."""
        encoded = base64.urlsafe_b64encode(bytes(range(size))).rstrip(b"=").decode()
        changed = change_char(encoded, len(encoded) - 1)
        padding = "=" * (-len(encoded) % 4)
        assert base64.urlsafe_b64decode(changed + padding) != bytes(range(size))


class TestOriginVariants:
    @pytest.mark.parametrize(
        ("allowed", "variant", "expected"),
        [
            ("https://app.example.com", "suffixed", "https://app.example.com.attacker.invalid"),
            ("https://app.example.com", "look-alike", "https://evilapp.example.com"),
            ("https://app.example.com", "other-scheme", "http://app.example.com"),
            ("https://app.example.com", "other-port", "https://app.example.com:8443"),
            ("http://localhost:3000", "other-port", "http://localhost:3001"),
            ("HTTPS://App.Example.com:443/", "other-scheme", "http://app.example.com"),
            ("http://[::1]:8080", "look-alike", "http://evil[::1]:8080"),
            ("https://app.example.com", "null", "null"),
        ],
    )
    def test_variants_of_an_allowed_origin(self, allowed: str, variant: str, expected: str) -> None:
        """Each variant is derived from the canonical allowed Origin."""
        assert origin_variant(allowed, variant)[0] == expected

    @given(
        st.sampled_from(["http", "https"]),
        st.from_regex(r"[a-z]{1,10}(\.[a-z]{2,5})?", fullmatch=True),
        st.none() | st.integers(1, 65535),
    )
    def test_no_variant_is_the_allowed_origin(
        self, scheme: str, host: str, port: int | None
    ) -> None:
        """Every variant differs from the allowed Origin, so a refusal of it is meaningful."""
        allowed = f"{scheme}://{host}" + (f":{port}" if port else "")
        for variant in ORIGIN_IDS:
            assert origin_variant(allowed, variant)[0] != allowed


def attempt(
    outcome: Outcome, status: int | None = None, close: CloseInfo | None = None
) -> ConnectionAttempt:
    return ConnectionAttempt(
        "ws://h/ws", 0.0, 0.0, outcome=outcome, http_status=status, close=close
    )


def closed(code: int, *, by_us: bool = False) -> CloseInfo:
    return CloseInfo(
        code, "", received=True, sent_code=1000 if by_us else None, initiated_by_us=by_us, at=1.0
    )


class TestVerdicts:
    @pytest.mark.parametrize(
        "refused",
        [
            attempt(Outcome.HTTP_REJECTED, 401),
            attempt(Outcome.HTTP_REJECTED, 403),
            attempt(Outcome.OPENED, close=closed(1008)),
            attempt(Outcome.OPENED, close=closed(3000)),
            attempt(Outcome.OPENED, close=closed(3003)),
        ],
    )
    def test_refusals(self, refused: ConnectionAttempt) -> None:
        """HTTP 401/403 and closes 1008, 3000 and 3003 are refusals."""
        assert got_through(refused) is None

    @pytest.mark.parametrize(
        ("let_in", "words"),
        [
            (attempt(Outcome.OPENED, close=closed(1000, by_us=True)), "accepted and stayed open"),
            (attempt(Outcome.OPENED), "accepted and stayed open"),
            (attempt(Outcome.HTTP_REJECTED, 500), "refused, but with HTTP 500"),
            (attempt(Outcome.OPENED, close=closed(1011)), "not as an auth or policy refusal"),
        ],
    )
    def test_not_refused(self, let_in: ConnectionAttempt, words: str) -> None:
        """An accepted connection, a server error or another close code is not a refusal."""
        verdict = got_through(let_in)
        assert verdict is not None and words in verdict

    def test_the_message_says_what_why_and_the_fix(self) -> None:
        """A failure names the variant, what the service did, the CWE and the fix."""
        message = bypass_message("an empty token", "it was accepted", AUTH_BYPASS)
        assert message.splitlines() == [
            "an empty token got through: it was accepted; expected HTTP 401/403 or close 1008",
            f"why it matters: {AUTH_BYPASS.why} ({AUTH_BYPASS.refs})",
            f"fix: {AUTH_BYPASS.fix}",
        ]

    def test_reflection_names_the_places(self) -> None:
        """Only the places that contain the secret are named; an empty secret is nowhere."""
        places = {"the HTTP body": "bad token abc123", "the close reason": "nope"}
        assert reflected_in("abc123", places) == ["the HTTP body"]
        assert reflected_in("", places) == []


OVER_CAPACITY_ANSWERS = [  # what the service did with connection N + 1 -> the verdict's words
    (attempt(Outcome.HTTP_REJECTED, 429), None),
    (attempt(Outcome.HTTP_REJECTED, 503), None),
    (attempt(Outcome.OPENED, close=closed(1013)), None),
    (attempt(Outcome.OPENED), "accepted and stayed open"),
    (attempt(Outcome.OPENED, close=closed(1013, by_us=True)), "accepted and stayed open"),
    (attempt(Outcome.HTTP_REJECTED, 403), "HTTP 403, not 429 or 503"),
    (attempt(Outcome.OPENED, close=closed(1008)), "closed with 1008, not 1013"),
    (attempt(Outcome.TIMEOUT), "not with a refusal"),
]


class TestOverCapacity:
    @pytest.mark.parametrize(("answer", "words"), OVER_CAPACITY_ANSWERS)
    def test_only_1013_429_and_503_refuse(
        self, answer: ConnectionAttempt, words: str | None
    ) -> None:
        """Close 1013 and HTTP 429/503 refuse; anything else says what the service did."""
        verdict = over_capacity_verdict(answer)
        assert verdict is None if words is None else verdict is not None and words in verdict


class TestAbuses:
    def test_invalid_utf8_is_a_well_formed_text_frame(self) -> None:
        """Framing is right and only the payload is wrong (websockets checks it when decoding)."""
        server = Protocol(SERVER)
        server.receive_data(abuse("invalid-utf8").frames())
        [frame] = server.events_received()
        assert isinstance(frame, Frame) and frame.opcode is Opcode.TEXT
        with pytest.raises(UnicodeDecodeError):
            frame.data.decode()

    @pytest.mark.parametrize("name", [case.id for case in ABUSES if case.id != "invalid-utf8"])
    def test_a_websockets_server_closes_on_each(self, name: str) -> None:
        """websockets' server-side frame parser answers each with one of the expected codes."""
        chosen = abuse(name)
        server = Protocol(SERVER)  # an open connection
        server.receive_data(chosen.frames())
        assert server.close_sent is not None
        assert server.close_sent.code in chosen.codes


class TestHealthUrl:
    @pytest.mark.parametrize("url", ["http://127.0.0.1:8080/health", "https://api.example/hz"])
    def test_accepted(self, url: str) -> None:
        """An http(s) URL with a host is a health endpoint."""
        assert parse_health_url(url) == url

    @pytest.mark.parametrize("url", ["ws://host/health", "/health", "http:///health"])
    def test_refused_naming_the_valid_form(self, url: str) -> None:
        """Anything else is a usage error that shows the valid form."""
        with pytest.raises(ConfigError, match="valid: http://host:port/health"):
            parse_health_url(url)


class TestFuzzFrames:
    @given(frame_sequences())
    def test_each_frame_is_written_as_drawn(self, frames: list[FuzzFrame]) -> None:
        """The first two bytes carry the drawn FIN, RSV bits, opcode and mask bit; then a close."""
        for frame in frames:
            head = frame.serialize()[:2]
            rsv = sum(bit << (6 - n) for n, bit in enumerate(frame.rsv))
            assert head[0] == (frame.fin << 7) | rsv | frame.opcode
            assert head[1] >> 7 == frame.masked
        assert describe(frames)

    @given(st.sampled_from([Opcode.TEXT, Opcode.BINARY]), st.lists(st.binary(), min_size=1))
    def test_fragments_make_one_message(self, opcode: Opcode, pieces: list[bytes]) -> None:
        """A fragmented message starts with its opcode, continues, and ends with FIN once."""
        frames = fragments(opcode, pieces, ping_at=None)
        assert frames[0].opcode == opcode
        assert all(f.opcode == Opcode.CONT for f in frames[1:])
        assert [f.fin for f in frames] == [False] * (len(pieces) - 1) + [True]
        assert b"".join(f.payload for f in frames) == b"".join(pieces)

    def test_every_sequence_ends_with_a_normal_close(self) -> None:
        """The service is asked to close normally after the fuzzed frames."""
        assert serialize([])[:2] == bytes([0x88, 0x82])
