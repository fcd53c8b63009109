"""Several methods averaged pixel by pixel ("starfm+fsdaf"), what `auto` runs when its validation says the mean
of the best candidates beats the best alone (their errors partly cancel)."""
from __future__ import annotations

import dataclasses
from typing import Callable, List, Sequence

import torch

from .contract import MethodContext, MethodSpec, tick_within


def own(context: MethodContext, member: MethodSpec) -> MethodContext:
    """The ensemble's context as one member sees it: its own inputs and survey, its default options."""
    given = frozenset(context.given) & frozenset(member.required + member.optional)
    return dataclasses.replace(context, given=given, options={}, survey=context.survey.get(member.name, {}))


def member_functions(members: Sequence[MethodSpec], context: MethodContext) -> List[Callable]:
    """Each member's tile function, built in its own view of an ensemble context whose surveys have run; as they
    run one after another on a batch, each reports its ticks in its own share of the batch, so progress only rises."""
    count = len(members)
    return [member.build(dataclasses.replace(own(context, member),
                                             tick=tick_within(context.tick, index / count, (index + 1) / count)))
            for index, member in enumerate(members)]


def ensemble(members: Sequence[MethodSpec]) -> MethodSpec:
    """The mean of the members' predictions, with the widest halo and every member's inputs and survey."""
    required = tuple(dict.fromkeys(role for m in members for role in m.required))
    optional = tuple(dict.fromkeys(role for m in members for role in m.optional if role not in required))

    def halo(context: MethodContext) -> int:
        return max(m.halo(own(context, m)) for m in members)

    def survey(context: MethodContext, scene):
        """Each member's scene survey added to its reference survey, as `MethodSpec.surveyed` merges them."""
        return {m.name: {**context.survey.get(m.name, {}), **m.survey(own(context, m), scene)}
                for m in members if m.survey is not None}

    def reference_survey(context: MethodContext, scene):
        return {m.name: m.reference_survey(own(context, m), scene) for m in members if m.reference_survey is not None}

    def build(context: MethodContext):
        methods = member_functions(members, context)
        return lambda batch: torch.stack([method(batch).float() for method in methods]).mean(dim=0)

    return MethodSpec(
        name="+".join(m.name for m in members),
        description="mean of " + ", ".join(m.name for m in members),
        required=required,
        optional=optional,
        halo=halo,
        build=build,
        needs_weights=any(m.needs_weights for m in members),
        blend=any(m.blend for m in members),
        survey=survey if any(m.survey is not None for m in members) else None,
        reference_survey=reference_survey if any(m.reference_survey is not None for m in members) else None,
    )
