"""crm_to_mailer's customisation: its stub function, filled in.

crm_to_mailer.yaml maps the target field `tags` to `{stub: tags_for}`, so the
generated crm_to_mailer.py has a tags_for() that raises NotImplementedError,
between `# p2pgen:begin stub tags_for` and `# p2pgen:end stub tags_for`. Below
is what a developer writes there. `p2pgen demo` puts it into that region (the
def line is the generated one; names like SourceRecord are the script's) and
shows that regeneration keeps it.
"""


def tags_for(record: SourceRecord) -> list[str]:
    """Tag each member with the contact's tier, for targeted mailings."""
    tier = record.tier or "bronze"  # the CRM counts no tier as bronze
    return [f"tier:{tier}"]
