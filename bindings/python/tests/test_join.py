"""Invites and joining through the binding (include/kith.h "Invites", spec/protocol.md NET-30):
a served replica invites, a fresh one joins with the code and holds its contact; the same code
is refused the second time, and a mistyped one before any connection."""

import kith
from tests.helpers import ReplicaCase


class Join(ReplicaCase):
    def test_invite_join_and_refusals(self):
        a, b, c = self.open("a"), self.open("b"), self.open("c")
        with a.serve(listen="tcp://127.0.0.1:*") as server:
            endpoint = server.endpoint
            code = a.invite(addrs=[endpoint], device_name="laptop")
            self.assertRegex(code, r"^[0-9A-Z]{5}(-[0-9A-Z]{1,5})+$")
            info = b.join(code, device_name="phone", timeout_ms=20000)
            self.assertEqual(info.group_id, a.group().id)
            self.assertEqual(info.endpoint, endpoint)
            self.assertEqual(info.sync.proto, 5)
            self.assertEqual(sorted(d.name for d in a.devices()), ["laptop", "phone"])
            a.invite(addrs=[endpoint])  # keeps the door open: the used code is judged
            with self.assertRaises(kith.KithError) as used:
                c.join(code, device_name="tablet", timeout_ms=20000)
            self.assertEqual(used.exception.name, "KITH_EUNTRUSTED")
            bad = ("1" if code[0] != "1" else "2") + code[1:]
            with self.assertRaises(kith.KithError) as typo:
                c.join(bad, device_name="tablet")
            self.assertEqual(typo.exception.name, "KITH_EMALFORMED")
        self.assertFalse(c.group().in_group)
