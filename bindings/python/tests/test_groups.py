"""Device groups through the binding (include/kith.h "Device groups", spec/groups.md): found a
group, read it and its devices, refuse what must be refused, and retire this replica's own key,
after which it writes nothing."""

import kith
from tests.helpers import ReplicaCase


class Groups(ReplicaCase):
    def test_found_list_and_retire(self):
        a = self.open("a")
        self.assertFalse(a.group().in_group)
        self.assertEqual(a.devices(), [])
        a.group_create("home", "laptop")
        g = a.group()
        self.assertTrue(g.in_group)
        self.assertEqual(g.name, "home")
        self.assertEqual(len(g.id), 32)
        self.assertEqual(g.members, 1)
        self.assertEqual(a.status().group.id, g.id)
        with self.assertRaises(kith.KithError) as again:
            a.group_create("other", "laptop")
        self.assertEqual(again.exception.name, "KITH_EEXIST")
        devices = a.devices()
        self.assertEqual(len(devices), 1)
        self.assertEqual(devices[0].id, a.id)
        self.assertEqual(devices[0].name, "laptop")
        self.assertTrue(devices[0].self)
        self.assertFalse(devices[0].removed)
        with self.assertRaises(kith.KithError) as unknown:
            a.device_remove(0x0123456789ABCDEF)
        self.assertEqual(unknown.exception.name, "KITH_ENOTFOUND")
        with a.write() as t:
            t.create("contacts", name="before")
        a.device_remove(a.id)
        g = a.group()
        self.assertTrue(g.self_removed)
        self.assertEqual(g.members, 0)
        self.assertTrue(a.devices()[0].removed)
        with self.assertRaises(kith.KithError) as refused:
            with a.write() as t:
                t.create("contacts", name="after")
        self.assertEqual(refused.exception.name, "KITH_EUNTRUSTED")

    def test_rekey(self):
        # in no group: refused, nothing changed (spec/data-model.md FORK-12)
        a = self.open("a")
        before = a.id
        with self.assertRaises(kith.KithError) as refused:
            a.rekey()
        self.assertEqual(refused.exception.name, "KITH_EINVAL")
        self.assertEqual(a.id, before)
        self.assertIsNone(a.rekeyed())
        # in a group: a new key, admitted by the old one under the same name (FORK-11)
        a.group_create("home", "laptop")
        ri = a.rekey()
        self.assertEqual(ri.old_id, before)
        self.assertEqual(ri.new_id, a.id)
        self.assertNotEqual(a.id, before)
        self.assertFalse(ri.lost_fork)
        self.assertEqual(a.rekeyed(), ri)
        names = sorted((d.name, d.self) for d in a.devices())
        self.assertEqual(names, [("laptop", False), ("laptop", True)])
        with a.write() as t:
            t.create("contacts", name="under the new key")
