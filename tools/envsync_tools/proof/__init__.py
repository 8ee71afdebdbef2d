"""The permission proof's static half: what a real `sceptre launch` and sync would be refused.

- `policy`: the evaluator (identity, boundary, resource, key, trust and endpoint policies);
- `handler_permissions`: what CloudFormation calls as the execution role, per resource schema;
- `static`: one env's rendered stacks against the roles that deploy them.

The dynamic half (every call the offline stand-in served, evaluated) is `envsync_local.proof`.
"""
