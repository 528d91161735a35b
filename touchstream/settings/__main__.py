"""``python -m touchstream.settings``: print the README's settings table."""

from touchstream.settings import markdown_table

print(markdown_table())
