"""examples/contacts.py runs, reports the overruled edit and converges."""

import os
import subprocess
import sys

from tests.helpers import ReplicaCase

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples",
                       "contacts.py")


class Example(ReplicaCase):
    def test_contacts_example(self):
        out = subprocess.run([sys.executable, EXAMPLE, self.dir], capture_output=True, text=True,
                             timeout=300)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("overruled: contacts.phone", out.stdout)
        self.assertIn("synced: 1 ops sent", out.stdout)
        self.assertIn("feed: ", out.stdout)
        self.assertRegex(out.stdout, r"feed: \d+ remote from [0-9a-f]{16}: contacts tags")
        self.assertIn("tags: engines, friend, math", out.stdout)
        self.assertIn("replicas converged: yes", out.stdout)
