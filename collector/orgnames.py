"""AS organisation names → display names that group well.

Registries spell one operator several ways ("Foo Inc", "Foo, Inc.", "FOO INC.").
The reader applies this to every database's names (bundled or the operator's
own), so the stored ``isp`` field groups the same way whatever the source; the
AS number stays the key.
"""

from __future__ import annotations

import re

# Legal forms that only split one operator into several spellings ("Foo Inc",
# "Foo, Inc.", "FOO INC."). Words that carry meaning (Bank, University,
# Company, Telecom) stay. Matched case-insensitively at the end, repeatedly.
_LEGAL = (
    r"inc|incorporated|llc|l\.l\.c|ltd|limited|gmbh|ag|s\.?a\.?s?|s\.?r\.?l|s\.?l|b\.?v|n\.?v|corp|corporation"
    r"|co|plc|llp|l\.?p|pty|ltda|eireli|me|oy|ab|a\.?s|o[uü]|jsc|pjsc|ojsc|ooo|s\.?r\.?o|d\.?o\.?o|sp\.? z o\.?o"
    r"|sdn\.? bhd|bhd|pte|kg|e\.?v|k\.?k|s\.?p\.?a|s\.?a\.?u|s\.?a\.? de c\.?v|c\.?v"
)
_LEGAL_TAIL = re.compile(rf"(?:[\s,]+|(?<=\.))(?:{_LEGAL})\.?$", re.IGNORECASE)
_SMALL_WORDS = frozenset({"of", "and", "the", "for", "de", "da", "do", "del", "la", "et", "und", "y", "e"})


def normalise_org(name: str) -> str:
    """A display name that groups well: no legal-form suffix, no SHOUTING. Idempotent.

    ``"Cloudflare, Inc."`` → ``"Cloudflare"``, ``"Google LLC"`` → ``"Google"``,
    ``"NTT DOCOMO, INC."`` → ``"NTT Docomo"``. Mixed-case names keep the
    operator's own spelling (``eBay``); all-caps names are title-cased except
    words of up to three letters, which are usually acronyms (``NTT``, ``OVH``).
    """
    text = " ".join(name.replace('"', " ").split())
    while True:
        cut = _LEGAL_TAIL.sub("", text).rstrip(" ,;-&")
        if cut == text or len(cut) < 2:
            break
        text = cut
    if text and not any(ch.islower() for ch in text):
        words = []
        for i, word in enumerate(text.split(" ")):
            if word.lower() in _SMALL_WORDS:
                words.append(word.lower() if i else word.capitalize())
            elif sum(ch.isalpha() for ch in word) <= 3:
                words.append(word)
            else:
                words.append("-".join(part.capitalize() for part in word.split("-")))
        text = " ".join(words)
    return text
