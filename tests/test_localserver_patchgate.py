"""The one gate of the background server's fast paths (:mod:`aodncore.prefect.localserver.patchgate`): each way
out logs exactly one line and only a switched-on, verified, well-shaped fast path patches anything."""

from __future__ import annotations

import logging

import pytest

from aodncore.prefect.localserver import patchgate

SWITCH = "AODNCORE_SERVER_FAST_TESTGATE"


class _Target:
    """Stands in for the Prefect object a fast path patches."""

    value = "Prefect's own"


@pytest.fixture
def gate(monkeypatch, caplog):
    """``install`` with a real patch of :class:`_Target`; what it logged and what it asked."""
    monkeypatch.setattr(_Target, "value", "Prefect's own")
    monkeypatch.delenv(SWITCH, raising=False)
    caplog.set_level(logging.INFO, logger="aodncore.test.patchgate")
    log = logging.getLogger("aodncore.test.patchgate")
    asked: list[str] = []

    def install(*, verified: bool = True, fits: bool = True) -> bool:
        def shape() -> bool:
            asked.append("fits")
            return fits

        def patch() -> str:
            _Target.value = "aodncore's"
            return "patched: aodncore's value"

        return patchgate.install(log, SWITCH, off="Prefect's own value kept", verified=verified, fits=shape,
                                 kept=lambda: "unverified: Prefect's own value kept", patch=patch)

    def lines() -> list[str]:
        return [record.getMessage() for record in caplog.records if record.name == "aodncore.test.patchgate"]

    return install, lines, asked


@pytest.mark.parametrize("value", ["0", "false", "No", " off "])
def test_switched_off_it_logs_one_line_asks_nothing_and_patches_nothing(gate, monkeypatch, value):
    install, lines, asked = gate
    monkeypatch.setenv(SWITCH, value)
    assert install() is False
    assert lines() == [f"{SWITCH}=0: Prefect's own value kept"]
    assert asked == [] and _Target.value == "Prefect's own"


def test_an_unverified_version_logs_one_line_and_patches_nothing(gate):
    install, lines, asked = gate
    assert install(verified=False) is False
    assert lines() == ["unverified: Prefect's own value kept"]
    assert asked == [] and _Target.value == "Prefect's own"  # the shape of an unverified version is not asked


def test_a_failed_shape_check_logs_one_line_and_patches_nothing(gate):
    install, lines, asked = gate
    assert install(fits=False) is False
    assert lines() == ["unverified: Prefect's own value kept"]
    assert asked == ["fits"] and _Target.value == "Prefect's own"


@pytest.mark.parametrize("value", [None, "1", "yes", ""])
def test_switched_on_verified_and_well_shaped_it_patches_and_says_so(gate, monkeypatch, value):
    install, lines, asked = gate
    if value is not None:
        monkeypatch.setenv(SWITCH, value)
    assert install() is True
    assert lines() == ["patched: aodncore's value"]
    assert asked == ["fits"] and _Target.value == "aodncore's"


def test_the_verified_prefect_is_the_installed_one_or_not():
    import prefect

    assert patchgate.prefect_verified() is (prefect.__version__ in patchgate.VERIFIED_PREFECT_VERSIONS)
    assert patchgate.versions({"3.10.0", "3.9.1"}) == "3.10.0, 3.9.1"
    line = patchgate.prefect_line("its own thing kept (verified for {versions})")
    assert line() == f"Prefect {prefect.__version__}: its own thing kept (verified for " \
                     f"{patchgate.versions(patchgate.VERIFIED_PREFECT_VERSIONS)})"


def test_the_verified_versions_decide_by_default(gate, monkeypatch):
    import prefect

    install, lines, asked = gate
    monkeypatch.setattr(prefect, "__version__", "3.99.0")
    log = logging.getLogger("aodncore.test.patchgate")
    assert patchgate.install(log, SWITCH, off="off", fits=lambda: True, kept=lambda: "kept",
                             patch=lambda: "patched") is False
    monkeypatch.setattr(prefect, "__version__", sorted(patchgate.VERIFIED_PREFECT_VERSIONS)[0])
    assert patchgate.install(log, SWITCH, off="off", fits=lambda: True, kept=lambda: "kept",
                             patch=lambda: "patched") is True
    assert lines() == ["kept", "patched"]


def test_every_fast_path_switch_is_named_in_settings():
    from aodncore.prefect.localserver import (
        fastbus,
        fastdocket,
        fastevents,
        fastlogs,
        fastmiddleware,
        fastroutes,
        settings,
    )

    switches = [fastevents.ENV_FAST_EVENTS, fastbus.ENV_FAST_BUS, fastlogs.ENV_FAST_LOGS, fastdocket.ENV_FAST_DOCKET,
                fastroutes.ENV_FAST_ROUTES, fastmiddleware.ENV_FAST_MIDDLEWARE]
    assert switches == [settings.ENV_FAST_EVENTS, settings.ENV_FAST_BUS, settings.ENV_FAST_LOGS,
                        settings.ENV_FAST_DOCKET, settings.ENV_FAST_ROUTES, settings.ENV_FAST_MIDDLEWARE]
    assert all(f"``{name}``" in settings.__doc__ for name in switches)
