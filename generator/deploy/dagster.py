"""`p2pgen deploy dagster`: a Dagster code location, `definitions.py` and the scripts."""

from __future__ import annotations

from generator import __version__
from generator.deploy import Deployable
from generator.render import environment, format_source

TEMPLATE = "deploy/definitions.py.jinja"


def code_location(links: list[Deployable]) -> dict[str, str]:
    """{file name: text}: `definitions.py`, and `links/<name>.py` for each link."""
    template = environment().get_template(TEMPLATE)
    definitions = template.render(version=__version__, links=links)
    files = {"definitions.py": format_source(definitions)}
    files |= {f"links/{link.script_file}": link.script for link in links}
    return files
