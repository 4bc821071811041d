"""Sync over loopback: one replica served by kith_serve in a thread, bound to a port the kernel
picks (its endpoint read from on_listen), the other syncing to it with kith_sync."""

import kith
from tests.helpers import ReplicaCase


class Sync(ReplicaCase):
    def test_sync_with_a_replica_served_in_a_thread(self):
        a, b = self.open("a"), self.open("b")
        self.pair(a, b)
        with a.write() as t:
            ada = t.create("contacts", name="Ada")
        with b.write() as t:
            t.create("contacts", name="Bob")
        heard, listened = [], []
        a.observe(on_change=heard.append)
        with a.serve(listen="tcp://127.0.0.1:*", on_listen=listened.append,
                     log_level=kith.LOG_ERROR) as server:
            endpoint = server.endpoint
            self.assertRegex(endpoint, r"^tcp://127\.0\.0\.1:\d+$")
            self.assertNotEqual(endpoint, "tcp://127.0.0.1:*")
            info = b.sync(endpoint, peer_pk=a.pubkey, timeout_ms=20000)
            self.assertTrue(info.converged)
            self.assertEqual(info.peer_id, a.id)
            self.assertEqual((info.ops_sent, info.ops_received), (2, 2))
            with b.write() as t:
                t.set("contacts", ada, "phone", "+1 555 0100")
            b.sync(endpoint, peer_pk=a.pubkey, timeout_ms=20000)
        self.assertFalse(server.running)
        self.assertEqual(listened, [endpoint])
        self.assertEqual(a.export_json(), b.export_json())
        self.assertTrue(any(h.source == kith.CHANGE_REMOTE and ("contacts", ada) in h.docs
                            for h in heard))
        peer = {p.id: p for p in b.peers()}[a.id]
        self.assertEqual(peer.failures, 0)
        self.assertGreater(peer.last_sync_ms, 0)
        # the handshake told each side the other's schema, and each kept it
        self.assertEqual((peer.schema_version, peer.schema_digest), a.schema_info())
        peer = {p.id: p for p in a.peers()}[b.id]
        self.assertEqual((peer.schema_version, peer.schema_digest), b.schema_info())

    def test_serve_logs_to_on_log(self):
        a = self.open("a")
        lines = []
        with a.serve(listen="tcp://127.0.0.1:*", on_log=lambda level, line: lines.append(
                (level, line)), log_level=kith.LOG_INFO, failing_after=3,
                handshake_ms=1000) as server:
            endpoint = server.endpoint
        self.assertTrue(any(level == kith.LOG_INFO and "listening on " + endpoint in line
                            for level, line in lines), lines)
        self.assertTrue(all(isinstance(line, str) and not line.endswith("\n")
                            for _, line in lines))

    def test_sync_to_an_untrusted_key_is_refused(self):
        a, b = self.open("a"), self.open("b")
        with self.assertRaises(kith.KithError) as cm:
            b.sync("tcp://127.0.0.1:9", peer_pk=a.pubkey, timeout_ms=2000)
        self.assertEqual(cm.exception.code, kith.EUNTRUSTED)

    def test_serve_rejects_an_unknown_option(self):
        a = self.open("a")
        with self.assertRaises(TypeError):
            a.serve(listen="tcp://127.0.0.1:*", colour=True)
