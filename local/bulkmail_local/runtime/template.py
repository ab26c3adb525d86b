"""Reading template.yaml: CloudFormation's short tags, parameters and the intrinsics we use."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import yaml


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(tag: str, node: yaml.Node, loader: yaml.SafeLoader) -> dict[str, Any]:
    name = "Ref" if tag == "Ref" else f"Fn::{tag}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(cast(yaml.MappingNode, node), deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: _tag(suffix, node, loader))


def load_template(path: Path) -> dict[str, Any]:
    """The template as a dict of its own (the caller may change it); parsed once per text, since
    pure-Python YAML costs a third of a second and every test's runtime reads the same file."""
    return cast(dict[str, Any], json.loads(_parse(path.read_text())))


@functools.lru_cache(maxsize=4)
def _parse(text: str) -> str:
    return json.dumps(yaml.load(text, Loader=_CfnLoader))


class Resolver:
    """Resolves Ref, Fn::GetAtt and Fn::Sub against parameters, pseudo parameters and resources."""

    def __init__(
        self,
        parameters: dict[str, Any],
        pseudo: dict[str, str],
        ref: Callable[[str], str],
        get_att: Callable[[str, str], str],
    ):
        self.parameters = parameters
        self.pseudo = pseudo
        self.ref = ref
        self.get_att = get_att

    def _ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.ref(name)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                return self.get_att(arg[0], arg[1])
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

                def sub(m: re.Match) -> str:
                    name = m.group(1)
                    if name in extra:
                        return str(self(extra[name]))
                    if "." in name:
                        return str(self.get_att(*name.split(".", 1)))
                    return str(self._ref(name))

                return re.sub(r"\$\{([^}!]+)\}", sub, text)
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        return value


def parameter_values(template: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    values = {name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()}
    unknown = set(overrides) - set(values)
    if unknown:
        raise ValueError(f"unknown template parameters: {', '.join(sorted(unknown))}")
    values.update(overrides)
    missing = [n for n, v in values.items() if v is None]
    if missing:
        raise ValueError(f"template parameters without a value: {', '.join(missing)}")
    return values


def merged_function(template: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    """A function's properties with the template's Globals applied the way SAM applies them."""
    merged = dict(template.get("Globals", {}).get("Function", {}))
    for key, value in properties.items():
        if key == "Environment":
            variables = dict(merged.get("Environment", {}).get("Variables", {}))
            variables.update(value.get("Variables", {}))
            merged["Environment"] = {"Variables": variables}
        else:
            merged[key] = value
    return merged
