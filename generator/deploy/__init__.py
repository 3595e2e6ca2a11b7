"""Deploy targets: the links of a repository, as they are on disk, made runnable on a
schedule (Kubernetes CronJobs, a Dagster code location)."""

from __future__ import annotations

from dataclasses import dataclass

from generator.errors import Problem
from generator.mapping_reader import load_mapping
from generator.output import PlannedFile
from generator.resolve import Resolution


@dataclass(frozen=True)
class Deployable:
    """One link to deploy: its script as committed, and what it needs to run."""

    name: str
    mapping_file: str
    description: str
    schedule: str  # five cron fields, UTC
    script: str  # the script on disk, customisations included
    required_env: tuple[str, ...]
    dependencies: tuple[str, ...]

    @property
    def script_file(self) -> str:
        return f"{self.name}.py"


def deployables(
    results: list[Resolution], planned: list[PlannedFile]
) -> tuple[list[Deployable], list[Problem]]:
    """The links whose generated script on disk is current; a problem for each other.

    A webhook link is a server, not a scheduled run: it is left out, with a warning.
    """
    scripts = {f.path.name: f for f in planned}
    found, problems = [], []
    for result in results:
        link = result.link
        assert link is not None
        if link.webhook is not None:
            problems.append(
                Problem(
                    str(result.mapping_path),
                    message=f"{link.name} is a webhook link, a server (`--serve`), not"
                    " a run on a schedule: left out; run it as a long-running service",
                    severity="warning",
                )
            )
            continue
        script = scripts[f"{link.name}.py"]
        if script.changed or script.existing is None:
            state = "is missing" if script.existing is None else "is not current"
            problems.append(
                Problem(
                    str(result.mapping_path),
                    message=f"{script.path} {state}; run `p2pgen generate "
                    f"{result.mapping_path} --out {script.path.parent.parent}` "
                    "first, so the script you deploy is the one you committed",
                )
            )
            continue
        mapping = load_mapping(result.mapping_path)
        found.append(
            Deployable(
                name=link.name,
                mapping_file=str(result.mapping_path),
                description=link.description,
                schedule=mapping.schedule,
                script=script.existing,
                required_env=link.required_env,
                dependencies=link.dependencies,
            )
        )
    return found, problems
