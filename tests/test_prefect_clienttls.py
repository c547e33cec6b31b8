"""``aodncore.prefect.clienttls``: Prefect's API clients share one verified TLS context per CA file, verified exactly
as Prefect would (same CA file and defaults); an insecure context is never shared; a changed CA file is reloaded."""

from __future__ import annotations

import shutil
import ssl

import certifi
from prefect.client.orchestration import PrefectClient, SyncPrefectClient
from prefect.settings import PREFECT_API_SSL_CERT_FILE, PREFECT_API_TLS_INSECURE_SKIP_VERIFY, temporary_settings

import aodncore.prefect.flows  # noqa: F401 - installs it, as every flow run does
from aodncore.prefect import clienttls

API = "http://127.0.0.1:9/api"


def _context(client) -> ssl.SSLContext:
    return client._client._transport._pool._ssl_context


def test_clients_share_one_context_verified_as_prefect_verifies():
    clienttls.install()  # idempotent
    first, second, async_client = SyncPrefectClient(API), SyncPrefectClient(API), PrefectClient(API)
    context = _context(first)
    assert context is _context(second) is _context(async_client)
    reference = ssl.create_default_context(cafile=PREFECT_API_SSL_CERT_FILE.value() or certifi.where())
    assert context.verify_mode == reference.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is reference.check_hostname is True
    assert context.cert_store_stats() == reference.cert_store_stats()
    assert context.minimum_version == reference.minimum_version and context.options == reference.options


def test_an_insecure_context_is_never_shared():
    verified = _context(SyncPrefectClient(API))
    with temporary_settings(updates={PREFECT_API_TLS_INSECURE_SKIP_VERIFY: True}):
        insecure = [_context(SyncPrefectClient(API)) for _ in range(2)]
    assert insecure[0] is not insecure[1] and verified not in insecure
    assert {c.verify_mode for c in insecure} == {ssl.CERT_NONE} and not any(c.check_hostname for c in insecure)
    after = _context(SyncPrefectClient(API))
    assert after is verified and after.verify_mode == ssl.CERT_REQUIRED and after.check_hostname


def test_a_changed_ca_file_is_loaded_again(tmp_path):
    bundle = tmp_path / "ca.pem"
    shutil.copy(certifi.where(), bundle)
    with temporary_settings(updates={PREFECT_API_SSL_CERT_FILE: str(bundle)}):
        first = _context(SyncPrefectClient(API))
        assert _context(SyncPrefectClient(API)) is first
        text = bundle.read_text()
        end = text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----\n")
        bundle.write_text(text[end:])  # one CA fewer
        changed = _context(SyncPrefectClient(API))
    assert changed is not first
    assert changed.cert_store_stats()["x509_ca"] == first.cert_store_stats()["x509_ca"] - 1
