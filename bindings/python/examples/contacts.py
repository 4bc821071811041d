#!/usr/bin/env python3
"""contacts.py — kith from Python: two replicas of one user's contacts (a phone and a laptop),
a concurrent edit on each, bundles carried both ways, the app told which edit was overruled,
then one more edit synced over loopback with the phone serving in a thread, which the phone's
change feed reports (as an app's UI would learn what its daemon applied).

    python3 contacts.py [DIR]     (DIR: an empty directory for the replicas; default: a
                                   temporary one)
"""

import datetime
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import kith  # noqa: E402


def set_phone(replica, doc, phone):
    with replica.write() as t:
        t.set("contacts", doc, "phone", phone)


def carry(src, dst, path):
    src.bundle_write(path)
    return dst.bundle_apply(path)


def main(top):
    bundle = os.path.join(top, "bundle")
    with kith.Replica(os.path.join(top, "phone"), create=True, schema=kith.crm_schema()) as phone, \
            kith.Replica(os.path.join(top, "laptop"), create=True, schema=kith.crm_schema()) as laptop:
        laptop.observe(on_conflict=lambda c: print(
            'overruled: %s.%s: "%s" lost to "%s"' % (c.collection, c.field, c.loser, c.winner)))

        # pair the two devices: each trusts the other's key
        laptop.trust(phone.pubkey, name="phone")
        phone.trust(laptop.pubkey, name="laptop")

        # the phone creates a contact; the laptop gets it by bundle
        with phone.write() as t:
            ada = t.create("contacts", name="Ada Lovelace", tags={"math", "friend"},
                           birthday=datetime.date(1815, 12, 10))
            t.create("reminders", contact=ada, text="Send the notes",
                     due=datetime.datetime(2026, 12, 1, 9, tzinfo=datetime.timezone.utc))
        carry(phone, laptop, bundle)

        # both edit the phone number while apart, then meet again
        set_phone(phone, ada, "+44 20 7946 0001")
        set_phone(laptop, ada, "+44 20 7946 0002")
        carry(phone, laptop, bundle)
        carry(laptop, phone, bundle)

        # one more edit, this time over the network: the phone serves, the laptop syncs;
        # the phone's change feed (any process's commits, from a cursor) tells what came in
        with laptop.write() as t:
            t.add("contacts", ada, "tags", "engines")
        feed = phone.feed(since="now")
        with phone.serve(listen="tcp://127.0.0.1:*", log_level=kith.LOG_ERROR) as server:
            info = laptop.sync(server.endpoint, peer_pk=phone.pubkey)
            print("synced: %d ops sent, %d received" % (info.ops_sent, info.ops_received))
        with feed:
            for ev in feed:
                for d in ev.docs:
                    print("feed: %d %s from %s: %s %s" % (
                        ev.cursor, "local" if ev.local else "remote", kith.id_hex(ev.origin),
                        d.collection, ",".join(d.fields)))

        with phone.read() as t:
            for doc in t.index("contacts.name"):
                c = t.doc("contacts", doc)
                print("%s  %s  %s  tags: %s" % (doc, c["name"], c["phone"],
                                                 ", ".join(sorted(c["tags"]))))
        same = phone.export_json() == laptop.export_json()
        print("replicas converged: %s" % ("yes" if same else "NO"))
        return 0 if same else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(main(sys.argv[1]))
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(main(tmp))
