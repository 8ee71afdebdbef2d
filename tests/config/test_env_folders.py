"""An env folder is the same stack files in every env: nothing in config/<env>/ names its env,
so adding an env is its `envs:` entry plus a copied folder (README "Add an env")."""

from __future__ import annotations

from tests.chain import CONFIG_DIR, chain, downstream_of, upstream_of

HEADER_LINE = "{{ envsync_env_keys() }}\n"
# Stack files only some envs have: the gate stack of an env whose runs wait for a person.
ONE_ENV_FILES = {"gate.yaml"}


def test_each_stack_file_is_the_same_in_every_env_that_has_it() -> None:
    by_name: dict = {}
    for env in chain():
        for path in sorted((CONFIG_DIR / env).glob("*.yaml")):
            if path.name != "config.yaml":
                by_name.setdefault(path.name, {})[env] = path.read_bytes()
    for name, texts in by_name.items():
        # held by two envs or more, and the same bytes in each: nothing in it is one env's
        # gate.yaml is held by the envs that wait for a person (the validator checks which)
        assert len(texts) >= 2 or name in ONE_ENV_FILES, f"config/{next(iter(texts))}/{name} exists in one env only"
        assert len(set(texts.values())) == 1, f"config/<env>/{name} differs between {sorted(texts)}"


def test_each_env_file_derives_its_keys_and_adds_only_its_own_values() -> None:
    heads = set()
    for env in chain():
        text = (CONFIG_DIR / env / "config.yaml").read_text()
        head, found, _ = text.partition(HEADER_LINE)
        assert found, f"config/{env}/config.yaml lacks its {HEADER_LINE.strip()} line"
        heads.add(head)
    assert len(heads) == 1  # the same comment above the line in every env


def test_the_peering_files_follow_the_position_in_the_chain() -> None:
    for env in chain():
        files = {path.name for path in (CONFIG_DIR / env).glob("peering-*.yaml")}
        expected = {name for name, neighbour in (("peering-upstream.yaml", upstream_of(env)),
                                                 ("peering-downstream.yaml", downstream_of(env))) if neighbour}
        assert files == expected, env
