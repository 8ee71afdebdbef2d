"""The permission proof (ARCHITECTURE §7): what a real `sceptre launch` and sync would be refused.

- `policy`: the evaluator (identity, boundary, resource, key, trust and endpoint policies);
- `handler_permissions`: what CloudFormation calls as the execution role, per resource schema;
- `static`: one env's rendered stacks against the roles that deploy them;
- `dynamic` + `world`: every call the stand-in served during a launch and sync, evaluated
  against the policies as deployed.
"""
