"""Chaos mode: the seeded schedule (pure) and runs over a user's project that find and replay."""

from __future__ import annotations

import contextlib
import re
import shlex
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_wsconn.chaos import (
    ALL_KINDS,
    CHAOS_KINDS,
    CONTAINER_KINDS,
    MAX_SEED,
    Applied,
    Window,
    chaos_section,
    check_kinds,
    draw,
    parse_chaos_seed,
    replay_command,
)
from pytest_wsconn.chaos_runner import ChaosRunner, eligible, fault_of
from pytest_wsconn.config import resolve
from pytest_wsconn.exceptions import ConfigError
from pytest_wsconn.timing import scaled

seeds = st.integers(0, MAX_SEED)
rounds = st.integers(0, 1000)
test_ids = st.text(max_size=80)
kind_sets = st.lists(st.sampled_from(CHAOS_KINDS), min_size=1, unique=True)
all_kind_sets = st.lists(st.sampled_from(ALL_KINDS), min_size=1, unique=True)
service_sets = st.lists(st.text("abcdefgh-_0123", min_size=1, max_size=12), min_size=1, unique=True)


class TestDraw:
    @given(seed=seeds, round_=rounds, test_id=test_ids, kinds=kind_sets)
    def test_same_inputs_same_draw(
        self, seed: int, round_: int, test_id: str, kinds: list[str]
    ) -> None:
        """The draw is a function of seed, round and test id alone: a replay gets the same."""
        assert draw(seed, round_, test_id, kinds) == draw(seed, round_, test_id, kinds)

    @given(seed=seeds, round_=rounds, test_id=test_ids, kinds=kind_sets)
    def test_draw_is_a_valid_fault_of_the_allowed_kinds(
        self, seed: int, round_: int, test_id: str, kinds: list[str]
    ) -> None:
        """Every draw is one of the allowed kinds and a fault the proxy accepts."""
        drawn = draw(seed, round_, test_id, kinds)
        assert drawn.kind in kinds
        fault = drawn.fault  # make_fault raises on anything invalid
        assert fault.kind == ("latency" if drawn.kind == "jitter" else drawn.kind)

    @given(
        seed=seeds,
        test_id=test_ids,
        start=st.floats(0, 10),
        spread=st.floats(0, 10),
        length=st.floats(0.001, 10),
    )
    def test_timing_stays_in_its_window(
        self, seed: int, test_id: str, start: float, spread: float, length: float
    ) -> None:
        """The fault starts and lasts within the window asked for (to the millisecond)."""
        window = Window(start, start + spread, length, length + spread)
        drawn = draw(seed, 0, test_id, window=window)
        assert start - 0.0005 <= drawn.at <= start + spread + 0.0005
        assert length - 0.0005 <= drawn.duration <= length + spread + 0.0005

    def test_the_schedule_is_pinned(self) -> None:
        """A seed means the same schedule in every release: a 3 a.m. seed replays next week."""
        drawn = draw(1234, 0, "tests/test_app.py::test_chat")
        assert drawn.describe() == "down at +0.341 s for 1.329 s"

    def test_seeds_rounds_and_tests_vary_the_draw(self) -> None:
        """Different tests, rounds and seeds get different faults: all kinds come up."""
        drawn = {draw(seed, r, f"t{seed}", CHAOS_KINDS).kind for seed in range(60) for r in (0, 1)}
        assert drawn == set(CHAOS_KINDS)

    def test_describe_names_the_fault_and_its_timing(self) -> None:
        """The description is what a failing report shows."""
        drawn = draw(5, 0, "t", ["down"], Window(0.25, 0.25, 1.0, 1.0))
        assert drawn.describe() == "down at +0.250 s for 1.000 s"


class TestContainerDraws:
    @given(seed=seeds, round_=rounds, test_id=test_ids, kinds=kind_sets)
    def test_no_services_no_container_fault_and_the_old_schedule(
        self, seed: int, round_: int, test_id: str, kinds: list[str]
    ) -> None:
        """Without services, container kinds are never drawn and every seed draws what it did
        before container faults existed: old seeds still replay."""
        assert draw(seed, round_, test_id, [*kinds, *CONTAINER_KINDS]) == draw(
            seed, round_, test_id, kinds
        )
        assert draw(seed, round_, test_id, kinds, services=["backend"]) == draw(
            seed, round_, test_id, kinds
        )

    @given(seed=seeds, round_=rounds, test_id=test_ids, kinds=all_kind_sets, services=service_sets)
    def test_with_services_a_pure_valid_draw(
        self, seed: int, round_: int, test_id: str, kinds: list[str], services: list[str]
    ) -> None:
        """With services, the draw is still a function of its inputs (in any service order);
        a container draw is a checked container fault of one of the services, and a proxy draw
        names no service."""
        drawn = draw(seed, round_, test_id, kinds, services=services)
        assert drawn == draw(seed, round_, test_id, kinds, services=services[::-1])
        assert drawn.kind in kinds
        container = drawn.container
        if drawn.kind in CONTAINER_KINDS:
            assert container is not None and drawn.service in services
            assert (container.kind, container.service) == (drawn.kind, drawn.service)
            assert dict(container.params) == dict(drawn.params)
        else:
            assert container is None and drawn.service is None
            assert drawn.fault.kind == ("latency" if drawn.kind == "jitter" else drawn.kind)

    def test_every_container_kind_comes_up(self) -> None:
        """Over seeds, every container kind is drawn, on every service named."""
        drawn = [draw(s, 0, "t", ALL_KINDS, services=["api", "db"]) for s in range(300)]
        assert {(d.kind, d.service) for d in drawn if d.service} == {
            (kind, service) for kind in CONTAINER_KINDS for service in ("api", "db")
        }

    def test_describe_names_the_service(self) -> None:
        """The report says which container got which fault."""
        drawn = draw(5, 0, "t", ["restart"], Window(0.25, 0.25, 1.0, 1.0), services=["backend"])
        assert drawn.describe() == (
            f"restart(timeout={drawn.params['timeout']}) of backend at +0.250 s for 1.000 s"
        )

    def test_only_container_kinds_without_services_says_how(self) -> None:
        """survives= of container kinds alone, and no service to fault: a ConfigError naming
        the option."""
        with pytest.raises(ConfigError, match="no fault to draw") as error:
            draw(1, 0, "t", ["pause", "kill"])
        assert "--wsconn-chaos-containers=SERVICE" in (error.value.hint or "")

    def test_container_kinds_are_valid_survives(self) -> None:
        """A test may declare it survives container faults."""
        assert check_kinds(["pause", "latency"]) == ("pause", "latency")


class FakeContainers:
    """A stack with container faults that records what it was asked to do."""

    kind = "compose"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, object], str]] = []
        self.released = threading.Event()

    @contextlib.contextmanager
    def fault(self, kind: str, service: str, **params: object) -> Iterator[None]:
        self.calls.append((kind, service, params, "on"))
        yield
        self.calls.append((kind, service, params, "off"))
        self.released.set()


class TestContainerRunner:
    def test_a_container_draw_is_held_by_the_stack(self) -> None:
        """A container draw goes to the stack's ContainerFaults.fault, on and then off."""
        drawn = draw(3, 0, "t", ["pause"], Window(0.0, 0.0, 0.01, 0.01), services=["backend"])
        stack = FakeContainers()
        runner = ChaosRunner(None, drawn, hold=fault_of(drawn, None, stack))  # type: ignore[arg-type]
        with runner:
            assert stack.released.wait(scaled(5))  # the fault's 10 ms are over
        assert stack.calls == [("pause", "backend", {}, "on"), ("pause", "backend", {}, "off")]
        assert runner.applied.applied_at is not None and runner.applied.error is None

    def test_a_stack_without_container_faults_is_reported(self) -> None:
        """On a stack that cannot fault containers, the draw is not applied and the report
        says why in one line."""
        drawn = draw(3, 0, "t", ["kill"], Window(0.0, 0.0, 0.01, 0.01), services=["backend"])
        refuse = fault_of(drawn, None, type("Local", (), {"kind": "local"})())  # type: ignore[arg-type]
        tried = threading.Event()

        def hold() -> contextlib.AbstractContextManager[object]:
            tried.set()
            return refuse()

        runner = ChaosRunner(None, drawn, hold=hold)  # type: ignore[arg-type]
        with runner:
            assert tried.wait(scaled(5))
        assert runner.applied == Applied(
            error="container faults need --wsconn-stack=compose (this is local)"
        )


class TestParsers:
    @pytest.mark.parametrize(
        ("text", "seed"), [("", "random"), ("random", "random"), ("0", 0), (" 42 ", 42)]
    )
    def test_seed(self, text: str, seed: object) -> None:
        """A seed is a whole number; the option alone (or 'random') draws one."""
        assert parse_chaos_seed(text) == seed

    @pytest.mark.parametrize("text", ["-1", "x", "1.5", str(MAX_SEED + 1), "tests/test_a.py"])
    def test_bad_seed_says_how(self, text: str) -> None:
        """A bad seed (or a path swallowed by the bare option) says to use '='."""
        with pytest.raises(ConfigError, match="invalid chaos seed") as error:
            parse_chaos_seed(text)
        assert "--wsconn-chaos=1234" in (error.value.hint or "")

    @given(st.text())
    def test_seed_parser_is_total(self, text: str) -> None:
        """Any text is a seed or a ConfigError, never another exception."""
        with contextlib.suppress(ConfigError):
            parse_chaos_seed(text)

    @pytest.mark.parametrize(
        ("kinds", "message"),
        [
            ("down", "must be a list"),
            (["down", "flood"], "unknown fault kind"),
            ([], "nothing to draw"),
        ],
    )
    def test_bad_survives(self, kinds: object, message: str) -> None:
        """survives= must be a non-empty list of chaos kinds."""
        with pytest.raises(ConfigError, match=message):
            check_kinds(kinds)

    @pytest.mark.parametrize(
        ("cli", "message"),
        [
            ({"chaos_containers": ["backend"]}, "chaos mode is off"),
            ({"chaos": "1", "chaos_containers": ["backend"]}, "but the stack is local"),
            (
                {"chaos": "1", "chaos_containers": ["x"], "stack": "external", "url": "ws://h/"},
                "but the stack is external",
            ),
        ],
    )
    def test_containers_need_chaos_on_compose(self, cli: dict[str, object], message: str) -> None:
        """Container faults are asked for on a compose stack in chaos mode, else a usage error."""
        with pytest.raises(ConfigError, match=message):
            resolve(cli=cli, env={}, ini={})
        settings = resolve(
            cli={"chaos": "1", "chaos_containers": ["a", "b"], "stack": "compose"}, env={}, ini={}
        )
        assert settings.chaos_containers == ("a", "b")

    def test_rounds_need_chaos(self) -> None:
        """Rounds without chaos mode would silently do nothing: a usage error."""
        with pytest.raises(ConfigError, match="chaos mode is off"):
            resolve(cli={"chaos_rounds": "3"}, env={}, ini={})
        assert resolve(cli={"chaos": "7", "chaos_rounds": "3"}, env={}, ini={}).chaos_rounds == 3


class TestReport:
    def test_replay_command(self) -> None:
        """The replay runs one test, the same seed, the same rounds (so the same ids)."""
        assert (
            replay_command("t.py::test_a[x y]", 7, 1)
            == "pytest 't.py::test_a[x y]' --wsconn-chaos=7"
        )
        assert replay_command("t.py::a", 7, 3, plugin=True) == (
            "pytest -p wsconn t.py::a --wsconn-chaos=7 --wsconn-chaos-rounds=3"
        )
        assert replay_command("t.py::a", 7, 1, services=("api", "db")) == (
            "pytest t.py::a --wsconn-chaos=7 --wsconn-chaos-containers=api "
            "--wsconn-chaos-containers=db"
        )

    def test_section_says_what_happened(self) -> None:
        """The section names the fault, when it came and went, and the replay."""
        drawn = draw(5, 0, "t", ["down"], Window(0.25, 0.25, 1.0, 1.0))
        text = chaos_section(drawn, Applied(0.251, 1.252), "pytest t --wsconn-chaos=5")
        assert text == (
            "fault: down at +0.250 s for 1.000 s\n"
            "applied at +0.251 s, removed at +1.252 s\n"
            "replay: pytest t --wsconn-chaos=5"
        )
        assert "+0.500 s, when the test ended" in chaos_section(drawn, Applied(0.251, 0.5), "r")
        assert "ended before" in chaos_section(drawn, Applied(), "r")
        assert "could not be applied: boom" in chaos_section(drawn, Applied(error="boom"), "r")


USER_PROJECT = """
import asyncio
import pytest
from pytest_wsconn import State

pytestmark = pytest.mark.asyncio

@pytest.mark.wsconn_chaos(survives=["down"])
async def test_fragile(wsconn_connect):
    # Claims to survive the service going down, but never reconnects.
    conn = await wsconn_connect()
    for _ in range(40):
        assert await conn.echo("ping", timeout=5) == "ping"
        await asyncio.sleep(0.05)  # pacing: ~2 s of traffic, across the fault's window

@pytest.mark.wsconn_chaos(survives=["down"])
async def test_resilient(wsconn_reconnecting_client):
    client = wsconn_reconnecting_client()
    assert await client.wait_until(lambda: client.opens >= 2, timeout=15)
    assert await client.wait_for(State.OPEN, timeout=15)
    assert await client.connection.echo("ping", timeout=5) == "ping"

async def test_no_connection():
    pass
"""


class TestEligible:
    def test_connecting_tests_without_own_fault_or_opt_out(self, pytester: pytest.Pytester) -> None:
        """Chaos applies to tests that connect, unless they opted out or hold their own fault."""
        pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
        items = pytester.getitems(
            """
            import pytest
            @pytest.mark.wsconn_chaos(off=True)
            def test_off(wsconn_connect): pass
            @pytest.mark.wsconn_fault("latency", ms=1)
            def test_own(wsconn_connect): pass
            def test_in(wsconn_reconnecting_client): pass
            def test_plain(): pass
            """
        )
        assert [eligible(item.fixturenames, item) for item in items] == [False, False, True, False]


@pytest.mark.usefixtures("user_env")
class TestChaosRun:
    def test_finds_the_fragile_test_and_its_replay_fails_the_same_way(
        self, pytester: pytest.Pytester
    ) -> None:
        """Two rounds: the test that does not reconnect fails under 'down' with the fault, its
        timing and a replay command; the replay of one round fails under the same fault."""
        pytester.makepyfile(test_user=USER_PROJECT)
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "--wsconn-chaos", "--wsconn-chaos-rounds=2", "-rf"
        )
        result.assert_outcomes(passed=3, failed=2)
        result.stdout.fnmatch_lines(["wsconn chaos: seed *, 2 round(s)"])
        output = result.stdout.str()
        faults = re.findall(r"^fault: (down at .*)$", output, re.M)
        replays = re.findall(r"^replay: (.*)$", output, re.M)
        assert len(faults) == len(replays) == 2, output
        assert "test_fragile[chaos0]" in replays[0] or "test_fragile[chaos1]" in replays[0]
        assert re.search(
            r"^applied at \+\d\.\d{3} s, removed at \+\d\.\d{3} s, when the test ended$",
            output,
            re.M,
        )

        args = shlex.split(replays[0])
        assert args[0] == "pytest"
        replay = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args[1:])
        replay.assert_outcomes(failed=1)
        assert re.findall(r"^fault: (down at .*)$", replay.stdout.str(), re.M) == [faults[0]]
        assert re.findall(r"^replay: (.*)$", replay.stdout.str(), re.M) == [replays[0]]

    def test_bad_marker_is_a_usage_error(self, pytester: pytest.Pytester) -> None:
        """A kind chaos does not know stops the run at collection, naming the test."""
        pytester.makepyfile(
            """
            import pytest
            @pytest.mark.wsconn_chaos(survives=["flood"])
            def test_a(): pass
            """
        )
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--wsconn-chaos=1")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            ["*test_a: @wsconn_chaos unknown fault kind(s) 'flood' in survives*"]
        )

    def test_container_faults_off_compose_are_a_one_line_usage_error(
        self, pytester: pytest.Pytester
    ) -> None:
        """--wsconn-chaos-containers on the local stack stops the run before any test: one
        error line and its hint."""
        pytester.makepyfile("def test_a(): pass")
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "--wsconn-chaos=1", "--wsconn-chaos-containers=backend"
        )
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        errors = [line for line in result.stderr.lines if line.startswith("ERROR")]
        assert errors == [
            "ERROR: pytest-wsconn: --wsconn-chaos-containers faults compose containers, but the "
            "stack is local"
        ]
        result.stderr.fnmatch_lines(["  hint: add --wsconn-stack=compose*"])
