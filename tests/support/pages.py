"""What an HTML page makes a browser load."""

import re

# Scripts, stylesheets, icons and the hosts a page preconnects to.
LOADED_URL = re.compile(r"<(?:script|link)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"")


def loaded_urls(html: str) -> list[str]:
    """The URLs of the scripts and links in `html`, in page order."""
    return LOADED_URL.findall(html)
