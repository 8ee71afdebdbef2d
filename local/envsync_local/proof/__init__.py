"""The permission proof's dynamic half: every AWS call the stand-in served during a launch and
sync, evaluated against the policies as deployed (`dynamic`), read back from the stand-in
(`world`). The evaluator and the static half are `envsync_tools.proof`.
"""
