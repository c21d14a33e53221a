"""Reading the Authentication-Results header a trusted mail server put on an email."""

from __future__ import annotations

import re
from email.message import Message


def _domain_matches(domain: str, from_domain: str) -> bool:
    """Relaxed alignment: the same domain, or one a subdomain of the other."""
    domain, from_domain = domain.lower().strip("."), from_domain.lower()
    return bool(domain) and (domain == from_domain or from_domain.endswith("." + domain)
                             or domain.endswith("." + from_domain))


def authenticated(headers: Message, authserv_id: str, from_domain: str) -> str | None:
    """None when the topmost Authentication-Results of ``authserv_id`` says dkim=pass or
    spf=pass for ``from_domain``; otherwise why not. Only the topmost counts: the trusted
    server prepends its own, and anything below may come from the sender."""
    for value in headers.get_all("Authentication-Results") or []:
        text = re.sub(r"\([^()]*\)", " ", " ".join(str(value).split()))
        parts = [p.strip() for p in text.split(";")]
        if not parts[0].split() or parts[0].split()[0].lower() != authserv_id.lower():
            continue
        for result in parts[1:]:
            props = dict(t.split("=", 1) for t in result.split() if "=" in t)
            if props.get("dkim", "").lower() == "pass":
                signer = props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
                if _domain_matches(signer, from_domain):
                    return None
            if props.get("spf", "").lower() == "pass":
                mailfrom = props.get("smtp.mailfrom", "").rpartition("@")[2]
                if _domain_matches(mailfrom, from_domain):
                    return None
        return f"Authentication-Results from {authserv_id} show no dkim or spf pass for " \
               f"{from_domain}"  # a lower one from the same id may be forged: not read
    return f"no Authentication-Results header from {authserv_id}"
