"""Python templates render safely in parallel: Sceptre renders the stacks of a batch in threads."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from envsync_sceptre.template_handlers.python_file import render_python_template
from tests.conftest import PROJECT_ROOT

PEERING = PROJECT_ROOT / "templates" / "peering.py"
SIDES = [{"side": side, "env": "staging", "is_prod": False, "peer_env": peer, "peer_cidr": cidr,
          "peer_account_id": "111111111111", "peer_assumer_role": "envsync-cfn-execution"}
         for side, peer, cidr in (("accepter", "prod", "10.3.0.0/16"), ("requester", "dev", "10.1.0.0/16"))]


def test_one_template_rendered_by_many_threads_at_once() -> None:
    # staging's peering-upstream and peering-downstream render peering.py in one batch
    alone = [render_python_template(PEERING, user_data) for user_data in SIDES]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda i: render_python_template(PEERING, SIDES[i % 2]), range(64)))
    assert together == [alone[i % 2] for i in range(64)]
    assert all(json.loads(body)["Resources"] for body in alone)
