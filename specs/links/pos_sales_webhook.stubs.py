"""pos_sales_webhook's customisation: its stub function, filled in.

pos_sales_webhook.yaml maps each sale line's `delta` to
`{stub: negative_quantity}`, so the generated pos_sales_webhook.py has a
negative_quantity() that raises NotImplementedError, between
`# p2pgen:begin stub negative_quantity` and `# p2pgen:end stub negative_quantity`.
Below is what a developer writes there. `p2pgen demo` puts it into that region
(the def line is the generated one; names like SourceRecord are the script's)
and shows that regeneration keeps it.
"""


def negative_quantity(record: SourceRecord, item: dict[str, Any]) -> int:
    """Units sold leave the warehouse: a negative change in stock."""
    return -int(item["quantity"])
