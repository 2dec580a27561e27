"""Signed expiring tokens: format, round trip, tampering, expiry and totality."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_wsconn.reference.tokens import (
    TokenKind,
    TokenVerdict,
    forge,
    reference_token,
    sign_token,
    verify_token,
)

SECRET = b"s" * 32
NOW = 1_700_000_000.0
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

subjects = st.text(max_size=50)
expiries = st.one_of(
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
    st.integers(min_value=-(10**12), max_value=10**12),
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(payload: bytes, secret: bytes = SECRET) -> str:
    """A token whose signature is right whatever the payload says."""
    part = b64(payload)
    return f"{part}.{b64(hmac.new(secret, part.encode(), hashlib.sha256).digest())}"


class TestSignToken:
    def test_format_is_two_unpadded_base64url_parts(self) -> None:
        """A token is payload and signature joined by one dot, with no padding."""
        token = sign_token(SECRET, "alice", NOW)
        payload_part, signature_part = token.split(".")
        assert "=" not in token
        assert set(token) <= set(BASE64URL) | {"."}
        payload = base64.urlsafe_b64decode(payload_part + "=" * (-len(payload_part) % 4))
        assert json.loads(payload) == {"sub": "alice", "exp": NOW}
        assert len(base64.urlsafe_b64decode(signature_part + "=")) == 32

    def test_signature_is_hmac_sha256_of_the_first_part(self) -> None:
        """The second part is HMAC-SHA256 of the first part under the secret."""
        token = sign_token(SECRET, "alice", NOW)
        payload_part = token.split(".")[0]
        expected = hmac.new(SECRET, payload_part.encode(), hashlib.sha256).digest()
        assert token.split(".")[1] == b64(expected)

    @pytest.mark.parametrize("expires_at", [float("nan"), float("inf"), float("-inf")])
    def test_non_finite_expiry_is_refused(self, expires_at: float) -> None:
        """A token that could never expire is not signed."""
        with pytest.raises(ValueError, match="JSON"):
            sign_token(SECRET, "alice", expires_at)


class TestVerifyToken:
    @given(subject=subjects, expires_at=expiries)
    def test_round_trip_is_valid_before_expiry(self, subject: str, expires_at: float) -> None:
        """A token verifies as valid under its secret at any time before it expires."""
        token = sign_token(SECRET, subject, expires_at)
        assert verify_token(SECRET, token, expires_at - 1) is TokenVerdict.VALID

    @given(expires_at=expiries)
    def test_expired_from_the_instant_of_expiry(self, expires_at: float) -> None:
        """At ``exp`` and after, a token is expired (as JWT's ``exp``)."""
        token = sign_token(SECRET, "alice", expires_at)
        assert verify_token(SECRET, token, expires_at) is TokenVerdict.EXPIRED
        assert verify_token(SECRET, token, expires_at + 1) is TokenVerdict.EXPIRED

    def test_valid_just_before_expiry(self) -> None:
        """The last instant before ``exp`` is still valid."""
        token = sign_token(SECRET, "alice", NOW)
        assert verify_token(SECRET, token, NOW - 1e-6) is TokenVerdict.VALID

    @pytest.mark.parametrize("token", [None, ""])
    def test_missing(self, token: str | None) -> None:
        """No token, or an empty one, is missing."""
        assert verify_token(SECRET, token, NOW) is TokenVerdict.MISSING

    def test_other_secret_is_forged(self) -> None:
        """A token signed with another secret is forged."""
        token = sign_token(b"o" * 32, "alice", NOW + 60)
        assert verify_token(SECRET, token, NOW) is TokenVerdict.FORGED

    def test_swapped_payload_is_forged(self) -> None:
        """Another token's signature does not vouch for this payload."""
        alice = sign_token(SECRET, "alice", NOW + 60).split(".")
        admin = sign_token(SECRET, "admin", NOW + 60).split(".")
        assert verify_token(SECRET, f"{admin[0]}.{alice[1]}", NOW) is TokenVerdict.FORGED

    @pytest.mark.parametrize(
        "token",
        [
            "no-dot",
            "a.b.c",
            ".",
            "abc.",
            ".abc",
            "eyJ9.!!!",
            "e30=.e30=",
            "é.é",
            "a b.c",
        ],
    )
    def test_malformed_structure(self, token: str) -> None:
        """Anything that is not two canonical base64url parts is malformed."""
        assert verify_token(SECRET, token, NOW) is TokenVerdict.MALFORMED

    @pytest.mark.parametrize(
        "payload",
        [
            b"not json",
            b"\xff\xfe",
            b"[]",
            b'{"exp": 1e12}',
            b'{"sub": 1, "exp": 1e12}',
            b'{"sub": "a"}',
            b'{"sub": "a", "exp": "tomorrow"}',
            b'{"sub": "a", "exp": true}',
            b'{"sub": "a", "exp": NaN}',
            b'{"sub": "a", "exp": Infinity}',
            b'{"sub": "a", "exp": 1e999}',
        ],
    )
    def test_signed_but_malformed_claims(self, payload: bytes) -> None:
        """Correctly signed claims without a string ``sub`` and a finite ``exp`` are malformed."""
        assert verify_token(SECRET, signed(payload), NOW) is TokenVerdict.MALFORMED

    def test_huge_integer_expiry_is_valid(self) -> None:
        """An integer ``exp`` beyond float range is compared exactly, not rejected."""
        token = signed(b'{"sub": "a", "exp": ' + b"9" * 400 + b"}")
        assert verify_token(SECRET, token, NOW) is TokenVerdict.VALID

    @given(data=st.data())
    def test_any_single_character_change_is_rejected(self, data: st.DataObject) -> None:
        """Changing any one character of a token makes it forged or malformed, never valid."""
        token = sign_token(SECRET, data.draw(subjects), NOW + 60)
        index = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
        replacement = data.draw(
            st.characters(codec="utf-8").filter(lambda char: char != token[index])
        )
        tampered = token[:index] + replacement + token[index + 1 :]
        assert verify_token(SECRET, tampered, NOW) in {TokenVerdict.FORGED, TokenVerdict.MALFORMED}

    @given(token=st.one_of(st.text(), st.text(alphabet=BASE64URL + ".=")))
    def test_never_raises(self, token: str) -> None:
        """Any string at all gets a verdict, and only a signed one can be valid."""
        verdict = verify_token(SECRET, token, NOW)
        assert isinstance(verdict, TokenVerdict)
        assert verdict is not TokenVerdict.VALID


class TestForge:
    @given(subject=subjects, expires_at=expiries)
    def test_forged_reference_token_is_forged(self, subject: str, expires_at: float) -> None:
        """Forging any reference token yields a well-shaped token judged forged, not malformed."""
        token = sign_token(SECRET, subject, expires_at)
        forged = forge(token)
        assert forged != token
        assert len(forged) == len(token)
        assert verify_token(SECRET, forged, expires_at - 1) is TokenVerdict.FORGED

    @pytest.mark.parametrize(
        ("token", "forged"),
        [
            ("eyJh.eyJz.Abc", "eyJh.eyJz.Bbc"),
            ("eyJh.eyJz.xyz", "eyJh.eyJz.Ayz"),
            ("opaque", "Apaque"),
            ("trailing.", "trailing.A"),
            ("", "A"),
        ],
    )
    def test_changes_the_first_signature_character(self, token: str, forged: str) -> None:
        """JWTs and opaque tokens alike get the first character of their last part changed."""
        assert forge(token) == forged


class TestReferenceToken:
    @pytest.mark.parametrize(
        ("kind", "verdict"),
        [
            ("valid", TokenVerdict.VALID),
            ("expired", TokenVerdict.EXPIRED),
            ("forged", TokenVerdict.FORGED),
        ],
    )
    def test_each_kind_gets_its_verdict(self, kind: TokenKind, verdict: TokenVerdict) -> None:
        """Each kind of reference token is judged as that kind by the server's verifier."""
        token = reference_token(SECRET, kind, now=NOW)
        assert verify_token(SECRET, token, NOW) is verdict

    def test_defaults_to_the_wall_clock(self) -> None:
        """Without ``now`` a valid token is valid right now."""
        token = reference_token(SECRET, "valid")
        assert verify_token(SECRET, token, time.time()) is TokenVerdict.VALID
